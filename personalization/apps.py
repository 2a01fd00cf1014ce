from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "tailored"
    verbose_name = "Tailored personalization"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from wagtail import hooks

        from . import checks, signals  # noqa: F401  (registers system checks and signal handlers)
        from .events.schema import register_event_type

        # Other apps add event types: @hooks.register("register_tailored_event_types")
        # def add(register): register("quote_request", {"product_id": FieldSpec(int)})
        for add_event_types in hooks.get_hooks("register_tailored_event_types"):
            add_event_types(register_event_type)
