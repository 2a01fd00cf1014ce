"""Registers the segment admin (personalization.admin_views) and the API keys admin with Wagtail."""

from wagtail import hooks
from wagtail.snippets.models import register_snippet

from .admin_views import SegmentViewSet
from .admin_views_personas import PersonaLabelViewSet
from .api_key_admin import ApiKeyViewSet

register_snippet(SegmentViewSet)
register_snippet(PersonaLabelViewSet)


@hooks.register("register_admin_viewset")
def register_api_keys():
    return ApiKeyViewSet("tailored_api_keys")
