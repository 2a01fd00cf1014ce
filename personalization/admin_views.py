"""The segment admin: a snippet viewset whose edit view has the rule builder, the live count
of visitors matching the rule, the segment's size over the last 30 days, and an endpoint the
builder posts the rule being edited to (admin login and CSRF required, like every admin POST)."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST
from wagtail.admin.panels import FieldPanel, FieldRowPanel, ObjectList, Panel
from wagtail.snippets.views.snippets import SnippetViewSet

from tailored import services
from tailored.core.rules import CompiledRule, RuleError, compile_rule
from tailored.events.schema import EVENT_TYPES

from .forms import RuleBuilderWidget, RuleField, RuleInput, SegmentForm, locate, rule_to_rows
from .models import Segment

logger = logging.getLogger(__name__)

RULE_FIELD = "rule"
WIDGET_ID = re.compile(r"^[A-Za-z][\w-]{0,63}$")
LIVE_HOURS = 24
SIZE_DAYS = 30


def live_count(compiled: CompiledRule) -> tuple[int, int] | None:
    """(matching, scanned) over visitors active in the last day; None when the store is down
    (the edit view still works without its figures)."""
    try:
        return services.live_count(compiled, hours=LIVE_HOURS)
    except Exception:
        logger.exception("live count failed")
        return None


@require_POST
def rule_preview(request: HttpRequest) -> JsonResponse:
    """The rule the builder's inputs describe, as JSON, and either where it fails (the row and
    input, for the builder) or how many visitors match it now."""
    if not any(request.user.has_perm(f"personalization.{action}_segment") for action in ("add", "change")):
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


def _error(message: str, path: str | None = None, row_error=None) -> dict[str, Any]:
    return {
        "message": message,
        "path": path,
        "row": row_error.row if row_error else None,
        "part": row_error.part if row_error else None,
        "row_message": row_error.label if row_error else None,
    }


def sparkline(sizes: list[tuple[date, int]], width: int = 300, height: int = 40) -> list[dict[str, Any]]:
    """Bars for an inline SVG: one per day, scaled to the busiest day."""
    peak = max((count for _, count in sizes), default=0)
    step = width / max(len(sizes), 1)
    bars = []
    for i, (day, count) in enumerate(sizes):
        bar = round(count / peak * (height - 2), 1) if peak else 0
        bars.append({"x": round(i * step, 1), "width": round(step * 0.8, 1), "y": round(height - bar, 1), "height": bar, "day": day, "count": count})
    return bars


def insights(segment: Segment) -> dict[str, Any]:
    """The edit view's figures for the saved segment: live count and daily sizes."""
    if segment.pk is None:
        return {"saved": False}
    try:
        counted = live_count(segment.compiled())
    except RuleError:
        counted = None  # a re-rendered form holding a rule that does not compile
    try:
        sizes = services.segment_sizes(segment.slug, days=SIZE_DAYS)
    except Exception:
        logger.exception("segment sizes failed")
        sizes = []
    return {
        "saved": True,
        "count": counted[0] if counted else None,
        "scanned": counted[1] if counted else None,
        "live_hours": LIVE_HOURS,
        "size_days": SIZE_DAYS,
        "sizes": sizes,
        "bars": sparkline(sizes),
        "peak": max((count for _, count in sizes), default=0),
        "today": sizes[-1][1] if sizes else 0,
    }


class SegmentInsightsPanel(Panel):
    """'N visitors match now' (refreshed by the builder as the rule changes) and the
    segment's size per day."""

    class BoundPanel(Panel.BoundPanel):
        template_name = "personalization/panels/segment_insights.html"

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            context.update(insights(self.instance))
            return context


class SegmentViewSet(SnippetViewSet):
    model = Segment
    icon = "group"
    menu_label = "Segments"
    menu_order = 250
    add_to_admin_menu = True
    list_display = ["name", "slug", "enabled", "priority", "updated_at"]
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
        return [*super().get_urlpatterns(), path("rule-preview/", rule_preview, name="rule_preview")]
