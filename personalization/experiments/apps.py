from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "tailored.experiments"
    label = "tailored_experiments"
    verbose_name = "Tailored experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (drops the running-experiment cache on edits and publishes)
