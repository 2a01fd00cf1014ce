"""Registers the segment admin (tailored.admin_views), the API keys admin, the Activation menu
(tailored.activation_admin), the Personalization lift report and Settings → Visitors
(tailored.visitor_admin) with Wagtail."""

from django.contrib.auth.models import Permission
from django.urls import include, path, reverse
from wagtail import hooks
from wagtail.admin.ui.components import Component
from wagtail.snippets.models import register_snippet

from . import ml
from .admin_views import SegmentViewSet
from .admin_views_personas import PersonaLabelViewSet
from .api_key_admin import ApiKeyViewSet
from .report_access import ReportMenuItem, can_view_reports

register_snippet(SegmentViewSet)
register_snippet(PersonaLabelViewSet)


@hooks.register("register_admin_viewset")
def register_api_keys():
    return ApiKeyViewSet("tailored_api_keys")


@hooks.register("register_admin_viewset")
def register_crm_traits():
    # Settings → CRM traits: the declarations a CRM's values and trait.<key> rules are checked against (issue 20).
    from .trait_admin import TraitViewSet

    return TraitViewSet("tailored_traits")


@hooks.register("register_admin_viewset")
def register_activation():
    # Activation → Triggers, Destinations, Activation log (issue 20).
    from .activation_admin import ActivationViewSetGroup

    return ActivationViewSetGroup()


@hooks.register("register_admin_urls")
def register_holdout_report_urls():
    # Wagtail loads every admin URL hook on a process's first request, public pages included:
    # holdout_admin imports no numpy or scipy at module level (the core's statistics import them
    # when the report computes), and tests/test_import_weight.py keeps it that way.
    from .holdout_admin import urlpatterns as holdout_urls

    return [path("personalization-lift/", include((holdout_urls, "tailored_holdout"), namespace="tailored_holdout"))]


@hooks.register("register_admin_urls")
def register_visitor_lookup_urls():
    from .visitor_admin import urlpatterns as visitor_urls

    return [path("visitors/", include((visitor_urls, "tailored_visitors"), namespace="tailored_visitors"))]


@hooks.register("register_settings_menu_item")
def register_visitor_lookup_menu_item():
    from .visitor_admin import VisitorsMenuItem

    return VisitorsMenuItem("Visitors", reverse("tailored_visitors:lookup"), icon_name="user", order=620)


@hooks.register("register_permissions")
def register_tailored_permissions():
    # Offered on the group edit screen: editors who answer data-rights requests get the look-up,
    # and those who read how personalization performs get the reports (tailored.report_access).
    return Permission.objects.filter(content_type__app_label="tailored", codename__in=["look_up_visitors", "view_personalization_reports"])


@hooks.register("register_reports_menu_item")
def register_holdout_report_menu_item():
    return ReportMenuItem("Personalization lift", reverse("tailored_holdout:report"), icon_name="group", order=910)


class NoticePanel(Component):
    """A warning on the dashboard: what editors should know about the site's set-up."""

    template_name = "wagtailadmin/shared/help_block.html"

    def __init__(self, name: str, order: int, text: str):
        self.name, self.order, self.text = name, order, text

    def get_context_data(self, parent_context=None):
        return {"status": "warning", "children": self.text}


@hooks.register("register_admin_urls")
def register_insights_urls():
    from .insights.views import urlpatterns as insights_urls

    return [path("insights/", include((insights_urls, "tailored_insights"), namespace="tailored_insights"))]


@hooks.register("register_reports_menu_item")
def register_insights_menu_item():
    return ReportMenuItem("Personalization insights", reverse("tailored_insights:report"), icon_name="view", order=905)


@hooks.register("construct_homepage_panels")
def add_alerts_panel(request, panels):
    # Open anomaly alerts on the dashboard (issue 17 item 4): each links to its chart.
    from .insights.panels import AlertsPanel

    if not can_view_reports(request.user):
        return
    panel = AlertsPanel()
    if panel.alerts:
        panels.insert(0, panel)


@hooks.register("construct_homepage_panels")
def add_ml_missing_panel(request, panels):
    # Above Wagtail's own panels: it explains why recommendations are trending products.
    if not ml.available():
        text = (f"{ml.NOTICE}. Experiment results, the Personalization lift report and persona rules need it too "
                f"(missing: {', '.join(ml.missing())}).")
        panels.insert(0, NoticePanel("tailored_ml_missing", 0, text))


@hooks.register("construct_homepage_panels")
def add_dead_letter_panel(request, panels):
    import redis

    from . import conf
    from .events.stream import DEAD_LETTER_KEY, dead_letter_count

    client = getattr(conf.get_profile_store(), "client", None)  # only the Redis store has a stream
    if client is None:
        return
    try:
        count = dead_letter_count(client)
    except redis.RedisError:  # the dashboard renders with Redis down: the count is a notice, not the page
        return
    if count:
        # Events the worker could not store wait in the dead-letter stream with their reasons (issue 14 item 4).
        text = (f"{count} event{'s' if count != 1 else ''} could not be stored by the worker; they wait with their "
                f"reasons in the Redis stream {DEAD_LETTER_KEY} (see the worker's log).")
        panels.append(NoticePanel("tailored_dead_letters", 1, text))
