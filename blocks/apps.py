from django.apps import AppConfig


class BlocksConfig(AppConfig):
    name = "tailored.blocks"
    label = "tailored_blocks"
    verbose_name = "Tailored blocks"

    def ready(self) -> None:
        # Must run before grapple's ready() builds its types (blocks precedes grapple in INSTALLED_APPS).
        from . import graphql  # noqa: F401
