"""Registers the segment admin (tailored.admin_views) and the API keys admin with Wagtail."""

from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.snippets.models import register_snippet

from .admin_views import SegmentViewSet
from .admin_views_personas import PersonaLabelViewSet
from .api_key_admin import ApiKeyViewSet

register_snippet(SegmentViewSet)
register_snippet(PersonaLabelViewSet)


@hooks.register("register_admin_viewset")
def register_api_keys():
    return ApiKeyViewSet("tailored_api_keys")


@hooks.register("register_admin_urls")
def register_holdout_report_urls():
    # Imported when the admin's URLs load, not at start-up: the report needs scipy's statistics,
    # which commands such as migrate and tailored_worker never use.
    from .holdout_admin import urlpatterns as holdout_urls

    return [path("personalization-lift/", include((holdout_urls, "tailored_holdout"), namespace="tailored_holdout"))]


@hooks.register("register_reports_menu_item")
def register_holdout_report_menu_item():
    return MenuItem("Personalization lift", reverse("tailored_holdout:report"), icon_name="group", order=910)
