"""Registers the segment admin (tailored.admin_views) and the API keys admin with Wagtail."""

from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.components import Component
from wagtail.snippets.models import register_snippet

from . import ml
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
    # Wagtail loads every admin URL hook on a process's first request, public pages included:
    # holdout_admin imports no numpy or scipy at module level (the core's statistics import them
    # when the report computes), and tests/test_import_weight.py keeps it that way.
    from .holdout_admin import urlpatterns as holdout_urls

    return [path("personalization-lift/", include((holdout_urls, "tailored_holdout"), namespace="tailored_holdout"))]


@hooks.register("register_reports_menu_item")
def register_holdout_report_menu_item():
    return MenuItem("Personalization lift", reverse("tailored_holdout:report"), icon_name="group", order=910)


class MlMissingPanel(Component):
    """The dashboard's notice on a site installed without the `ml` extra: why recommendations are
    trending products, and what else waits for it."""

    name = "tailored_ml_missing"
    order = 0  # above Wagtail's own panels: it explains what editors see on the site
    template_name = "wagtailadmin/shared/help_block.html"

    def get_context_data(self, parent_context=None):
        return {
            "status": "warning",
            "children": f"{ml.NOTICE}. Experiment results, the Personalization lift report and persona rules need it too "
            f"(missing: {', '.join(ml.missing())}).",
        }


@hooks.register("construct_homepage_panels")
def add_ml_missing_panel(request, panels):
    if not ml.available():
        panels.insert(0, MlMissingPanel())
