"""The personalization GraphQL API (graphene), composed into grapple's schema by the blocks app's
hooks when the `graphql` extra is installed and `grapple` is in INSTALLED_APPS."""

from importlib.util import find_spec

from django.apps import apps


def graphql_enabled() -> bool:
    """Whether the site serves GraphQL: grapple and graphene-django installed and both apps on."""
    if find_spec("grapple") is None or find_spec("graphene_django") is None:
        return False
    return apps.is_installed("grapple") and apps.is_installed("graphene_django")
