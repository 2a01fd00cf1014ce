"""Registers the segment admin (personalization.admin_views) with Wagtail."""

from wagtail.snippets.models import register_snippet

from .admin_views import SegmentViewSet

register_snippet(SegmentViewSet)
