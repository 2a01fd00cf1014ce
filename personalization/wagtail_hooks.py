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


class DeadLetterPanel(Component):
    """The dashboard's count of events the worker could not store (issue 14 item 4): they wait in
    the dead-letter stream with their reasons rather than vanish."""

    name = "tailored_dead_letters"
    order = 1
    template_name = "wagtailadmin/shared/help_block.html"

    def __init__(self, count: int):
        self.count = count

    def get_context_data(self, parent_context=None):
        from .events.stream import DEAD_LETTER_KEY

        return {
            "status": "warning",
            "children": f"{self.count} event{'s' if self.count != 1 else ''} could not be stored by the worker; "
            f"they wait with their reasons in the Redis stream {DEAD_LETTER_KEY} (see the worker's log).",
        }


@hooks.register("construct_homepage_panels")
def add_dead_letter_panel(request, panels):
    import redis

    from . import conf
    from .events.stream import dead_letter_count

    client = getattr(conf.get_profile_store(), "client", None)  # only the Redis store has a stream
    if client is None:
        return
    try:
        count = dead_letter_count(client)
    except redis.RedisError:  # the dashboard renders with Redis down: the count is a notice, not the page
        return
    if count:
        panels.append(DeadLetterPanel(count))
