from django.apps import AppConfig


class BlocksConfig(AppConfig):
    name = "tailored.blocks"
    label = "tailored_blocks"
    verbose_name = "Tailored blocks"

    def ready(self) -> None:
        from tailored.api import graphql_enabled

        from . import page_cache  # noqa: F401 - its receivers empty the page cache on publish

        # The block types must exist before grapple's ready() builds its types, so the blocks app
        # precedes grapple in INSTALLED_APPS. Without the graphql extra there is nothing to build.
        if graphql_enabled():
            from . import graphql  # noqa: F401
