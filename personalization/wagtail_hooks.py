"""Registers the segment admin (personalization.admin_views) with Wagtail."""

from wagtail.snippets.models import register_snippet

from .admin_views import SegmentViewSet
from .admin_views_personas import PersonaLabelViewSet

register_snippet(SegmentViewSet)
register_snippet(PersonaLabelViewSet)
