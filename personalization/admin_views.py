"""The segment admin: a snippet viewset whose list shows each segment's size now, its 7-day
trend and the pages that use it; whose edit view has the rule builder, the live count of
visitors matching the rule, the segment's size per day over the last 30 days, and warnings for
values no visitor has had; and an endpoint the builder posts the rule being edited to (admin
login and CSRF required, like every admin POST). The figures come from tailored.segment_insights
(issue 16 item 3)."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST
from wagtail.admin.panels import FieldPanel, FieldRowPanel, ObjectList, Panel
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.snippets.views.snippets import CreateView, EditView, IndexView, SnippetViewSet

from tailored.core.rules import CompiledRule, RuleError, compile_rule
from tailored.events.schema import EVENT_TYPES

from .forms import (
    RuleBuilderWidget,
    RuleField,
    RuleInput,
    SegmentForm,
    locate,
    rule_to_rows,
    rule_warnings,
)
from .models import Segment
from .rule_values import OPTION_SOURCES, value_warnings
from .segment_chart import size_chart, sparkline
from .segment_insights import (
    LIVE_HOURS,
    ListFigures,
    daily_sizes,
    first_stored_event_day,
    guarded,
    list_figures,
    live_counts,
)

logger = logging.getLogger(__name__)

RULE_FIELD = "rule"
WIDGET_ID = re.compile(r"^[A-Za-z][\w-]{0,63}\Z")
SIZE_DAYS = 30


def live_count(compiled: CompiledRule) -> tuple[int, int] | None:
    """(matching, scanned) over visitors active in the last day, as the segment list counts
    them; None when the store is down (the edit view still works without its figures)."""
    counted = guarded(lambda: live_counts({RULE_FIELD: compiled}, hours=LIVE_HOURS), "live count")
    return (counted.matching[RULE_FIELD], counted.scanned) if counted else None


@require_POST
def rule_preview(request: HttpRequest) -> JsonResponse:
    """The rule the builder's inputs describe, as JSON, and either where it fails (the row and
    input, for the builder) or how many visitors match it now."""
    if not may_edit_segments(request):
        return JsonResponse({"error": _error("You do not have permission to edit segments.")}, status=403)
    posted = RuleBuilderWidget().value_from_datadict(request.POST, {}, RULE_FIELD)
    try:
        rule = RuleField().clean(posted)
    except ValidationError as error:
        return JsonResponse({"rule": None, "json": None, "error": _error(" ".join(error.messages)), "count": None})
    body: dict[str, Any] = {"rule": rule, "json": json.dumps(rule, indent=2), "error": None, "count": None, "scanned": None}
    try:
        compiled = compile_rule(rule, known_events=EVENT_TYPES)
    except RuleError as error:
        builder_rows = posted.rows if isinstance(posted, RuleInput) and posted.mode == "builder" else ()
        body["error"] = _error(str(error), error.path, locate(error, builder_rows))
    else:
        counted = live_count(compiled)
        if counted is not None:
            body["count"], body["scanned"] = counted
        builder_rows = posted.rows if isinstance(posted, RuleInput) and posted.mode == "builder" else ()
        body["warnings"] = rule_warnings(rule, builder_rows).as_json()
    if isinstance(posted, RuleInput) and posted.mode == "json":
        # Switching from JSON back to the builder: the server renders the rows, or says it can't.
        translated = rule_to_rows(rule)
        body["representable"] = translated is not None
        if translated is not None:
            widget_id = request.POST.get("widget_id", "")
            widget_id = widget_id if WIDGET_ID.match(widget_id) else f"id_{RULE_FIELD}"
            body["match"] = translated[0]
            body["rows_html"] = RuleBuilderWidget().render_rows(RULE_FIELD, translated[1], widget_id)
    return JsonResponse(body)


def may_edit_segments(request: HttpRequest) -> bool:
    # The permission's app label is the model's ("tailored"), not the folder's.
    label = Segment._meta.app_label
    return any(request.user.has_perm(f"{label}.{action}_segment") for action in ("add", "change"))


@require_GET
def rule_values(request: HttpRequest) -> JsonResponse:
    """The options of one of the builder's pickers, as [value, label] pairs (for the long ones
    the edit view does not send until a rule needs them)."""
    if not may_edit_segments(request):
        return JsonResponse({"error": "You do not have permission to edit segments."}, status=403)
    kind = request.GET.get("kind", "")
    if kind not in OPTION_SOURCES:
        return JsonResponse({"error": f"no picker {kind!r}"}, status=404)
    return JsonResponse({"options": OPTION_SOURCES[kind]()})


def _error(message: str, path: str | None = None, row_error=None) -> dict[str, Any]:
    return {
        "message": message,
        "path": path,
        "row": row_error.row if row_error else None,
        "part": row_error.part if row_error else None,
        "row_message": row_error.label if row_error else None,
    }


def insights(segment: Segment) -> dict[str, Any]:
    """The edit view's figures for the saved segment: live count and the daily sizes chart."""
    if segment.pk is None:
        return {"saved": False}
    try:
        counted = live_count(segment.compiled())
    except RuleError:
        counted = None  # a re-rendered form holding a rule that does not compile
    sizes = guarded(lambda: daily_sizes([segment.slug], SIZE_DAYS)[segment.slug], "segment sizes") or []
    return {
        "saved": True,
        "count": counted[0] if counted else None,
        "scanned": counted[1] if counted else None,
        "live_hours": LIVE_HOURS,
        "size_days": SIZE_DAYS,
        "sizes": sizes,
        "chart": size_chart(sizes, now=counted[0] if counted else None) if sizes else None,
        **chart_coverage(sizes),
    }


def chart_coverage(sizes: list[tuple[date, int]]) -> dict[str, Any]:
    """What the chart covers: the first day someone was counted in the segment, and, when stored
    events go back further (history `tailored_train --synthetic` loaded, or visits from before
    the segment existed), the day they start: those visits were never counted into sizes."""
    if not sizes:
        return {}
    first_counted = next((day for day, count in sizes if count), None)
    stored_since = first_stored_event_day(sizes[0][0])
    uncounted = stored_since is not None and (first_counted is None or stored_since < first_counted)
    return {"first_counted": first_counted, "stored_since": stored_since if uncounted else None}


class SegmentInsightsPanel(Panel):
    """'N visitors match now' (refreshed by the builder as the rule changes) and the
    segment's size per day."""

    class BoundPanel(Panel.BoundPanel):
        template_name = "personalization/panels/segment_insights.html"

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            context.update(insights(self.instance))
            return context


class FiguresColumn(Column):
    """A column of the segment list drawn from the figures SegmentIndexView fetched for the whole
    page at once (`segment.tl_figures`), so a row costs no query or round trip of its own."""

    class Media:
        css = {"all": ["personalization/css/segment_list.css"]}

    def __init__(self, name: str, label: str, template: str, **kwargs):
        super().__init__(name, label=label, accessor="tl_figures", **kwargs)
        self.cell_template_name = template


class SegmentIndexView(IndexView):
    def get_table(self, object_list):
        segments = list(object_list)
        figures = list_figures(segments)
        for segment in segments:
            segment.tl_figures = list_row(segment, figures[segment.pk])
        return super().get_table(segments)


def list_row(segment: Segment, figures: ListFigures) -> dict[str, Any]:
    usage_url = reverse(Segment.snippet_viewset.get_url_name("usage"), args=[quote(segment.pk)])
    return {
        **{name: getattr(figures, name) for name in ("size_now", "scanned", "trend", "pages")},
        "live_hours": LIVE_HOURS,
        "sparkline": sparkline(figures.trend) if figures.trend else None,
        "usage_url": usage_url,
    }


class WarnAfterSave:
    """After a save, a warning message for each value of the rule that no visitor has had: the
    save goes through (a category may get its first visitor tomorrow), the editor is told."""

    def form_valid(self, form):
        response = super().form_valid(form)
        for warning in value_warnings(form.instance.rule):
            messages.warning(self.request, f"{form.instance.name}: {warning.message}")
        return response


class SegmentCreateView(WarnAfterSave, CreateView):
    pass


class SegmentEditView(WarnAfterSave, EditView):
    pass


class SegmentViewSet(SnippetViewSet):
    model = Segment
    icon = "group"
    menu_label = "Segments"
    menu_order = 250
    add_to_admin_menu = True
    index_view_class = SegmentIndexView
    add_view_class = SegmentCreateView
    edit_view_class = SegmentEditView
    list_display = [
        "name",
        "slug",
        FiguresColumn("size_now", "Size now", "personalization/segments/size_cell.html"),
        FiguresColumn("trend", "Last 7 days", "personalization/segments/trend_cell.html"),
        FiguresColumn("pages", "Used on", "personalization/segments/usage_cell.html"),
        BooleanColumn("enabled", label="Enabled"),
        "priority",
        "updated_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "slug", "description"]
    edit_handler = ObjectList(
        [
            FieldPanel("name"),
            FieldPanel("slug"),
            FieldPanel("description"),
            FieldRowPanel([FieldPanel("enabled"), FieldPanel("priority")]),
            FieldPanel("rule"),
            SegmentInsightsPanel(heading="Audience"),
        ],
        base_form_class=SegmentForm,
    )

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("rule-preview/", rule_preview, name="rule_preview"),
            path("rule-values/", rule_values, name="rule_values"),
        ]
