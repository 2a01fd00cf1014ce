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

        # Other apps add rule facts: @hooks.register("register_tailored_rule_field")
        # def add(register): register("plan", "text", read, label="Plan", choices=("free", "pro"))
        from .context.visitor_facts import register_rule_field

        for add_rule_fields in hooks.get_hooks("register_tailored_rule_field"):
            add_rule_fields(register_rule_field)

        # Products back in stock or cheaper feed the catalog triggers (issue 20).
        from .activation import catalog

        catalog.connect()

        # The first User-Agent parse of a process builds ua-parser's resolver (about 150 ms): done
        # here, in a thread, so that no visitor's first request pays for it.
        import threading

        from .context.device import warm

        threading.Thread(target=warm, name="tailored-ua-parser-warm-up", daemon=True).start()
