"""Reports -> Personalization insights: the HTML report and its CSV exports (issue 17 item 3).

Every figure comes from `InsightDay` rows (tailored.insights.report). Filters arrive as query
parameters and are validated: a bad one answers 400 with a JSON body naming the parameter, so a
bookmarked or hand-edited URL says what is wrong instead of showing something else."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from tailored.models import Alert, ScoreDay
from tailored.report_access import reports_only

from . import report
from .report import EARLIEST_DAY, LATEST_DAY, Filters

MAX_DAYS = 400
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
BLOCK = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
DEVICES = ("desktop", "mobile", "tablet")
TABLES = ("variants", "movers", "alerts", "models")
# A page id in ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() refuses
# (a 500); 18 digits stay inside a 64-bit integer column.
PAGE_ID = re.compile(r"[0-9]{1,18}")
# date.fromisoformat also takes "20240101" or "2024-W01-1": only the form the error promises.
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A text cell a spreadsheet would read as a formula (OWASP, CSV injection): =, +, -, @, tab, CR.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class FilterError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def parse_filters(query: Any, today: date) -> Filters:
    """The report's filters from the query string; FilterError names the first bad parameter."""
    # Both read before any default, start first: when both are wrong, the 400 names the start.
    start, end = _date(query, "start"), _date(query, "end")
    end = end or today
    # The default week is computed only when no start is given (a given start needs none), and
    # from an end already checked to be far enough from the calendar's first day.
    start = start or end - timedelta(days=6)
    if start > end:
        raise FilterError("start", "the start date is after the end date")
    if (end - start).days >= MAX_DAYS:
        raise FilterError("start", f"the range is at most {MAX_DAYS} days")
    segment, device, country = query.get("segment", ""), query.get("device", ""), query.get("country", "")
    if segment and not SLUG.match(segment):
        raise FilterError("segment", "a segment is a slug (lower-case letters, digits, - and _)")
    if device and device not in DEVICES:
        raise FilterError("device", f"the device is one of {', '.join(DEVICES)}")
    if country and not re.fullmatch(r"[A-Z]{2}", country):
        raise FilterError("country", "a country is two capital letters (ISO 3166-1), e.g. DE")
    page = query.get("page", "")
    if page and not PAGE_ID.fullmatch(page):
        raise FilterError("page", "the page is a page id (a whole number)")
    block = query.get("block", "")
    if block and not BLOCK.match(block):
        raise FilterError("block", "the block is a stream block id")
    return Filters(start, end, segment, device, country, int(page) if page else None, block)


def _date(query: Any, name: str) -> date | None:
    """The date parameter `name`, None when absent; FilterError when unreadable or so near the
    calendar's ends that the report's own date arithmetic (report.EARLIEST_DAY) would leave it."""
    value = query.get(name, "")
    if not value:
        return None
    try:
        day = date.fromisoformat(value) if ISO_DATE.fullmatch(value) else None
    except ValueError:  # well formed but no such day, e.g. 2026-02-30
        day = None
    if day is None:
        raise FilterError(name, "a date is written YYYY-MM-DD")
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise FilterError(name, f"a date is between {EARLIEST_DAY} and {LATEST_DAY}")
    return day


@reports_only
def report_view(request: HttpRequest) -> HttpResponse:
    try:
        filters = parse_filters(request.GET, timezone.now().date())
    except FilterError as error:
        return JsonResponse({"error": "invalid_filter", "field": error.field, "message": error.message}, status=400)
    if request.GET.get("format") == "csv":
        return csv_export(filters, request.GET.get("table", "variants"))
    context = {
        "filters": filters,
        "blocks": report.blocks(filters),
        "movers": report.top_movers(filters),
        "model_versions": report.model_versions(filters),
        "alerts": Alert.objects.all()[:20],
        "choices": report.choices(filters.start, filters.end),
        "devices": DEVICES,
        "segment_sizes": segment_sizes(filters),
        "scores": score_days(filters),
        "csv_query": request.GET.urlencode(),
    }
    return TemplateResponse(request, "personalization/insights/report.html", context)


def segment_sizes(filters: Filters) -> Any:
    """The chosen segment's daily size over the range (the profile store's HyperLogLogs), as the
    segment admin draws it; None for every visitor."""
    if not filters.segment:
        return None
    from tailored.segment_chart import size_chart
    from tailored.segment_insights import daily_sizes

    days = min((timezone.now().date() - filters.start).days + 1, 90)
    try:
        sizes = daily_sizes([filters.segment], days).get(filters.segment, [])
    except Exception:  # the store unavailable: the report still shows its rows
        return None
    return size_chart([(day, count) for day, count in sizes if filters.start <= day <= filters.end])


def score_days(filters: Filters) -> list[ScoreDay]:
    return list(ScoreDay.objects.filter(day__gte=filters.start, day__lte=filters.end).order_by("name", "day"))


def csv_export(filters: Filters, table: str) -> HttpResponse:
    """Any of the report's tables as CSV: variants (default), movers, alerts or models (the
    recommendation blocks per model version)."""
    if table not in TABLES:
        return JsonResponse({"error": "invalid_filter", "field": "table", "message": f"the table is one of {', '.join(TABLES)}"}, status=400)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="insights-{table}-{filters.start}-{filters.end}.csv"'
    writer = csv.writer(response)
    # Every cell of every table passes through _safe_cell here, so a new column or table is
    # covered without remembering to.
    for row in ROWS[table](filters):
        writer.writerow([_safe_cell(value) for value in row])
    return response


class FormattedNumber(str):
    """A figure already written as text for the CSV (`_num`): a number, its minus sign included,
    so _safe_cell leaves it as it is and the spreadsheet still reads a number."""


def _safe_cell(value: Any) -> Any:
    """The cell as a spreadsheet may open it: text that starts like a formula (a page title, a
    variant label, a segment name, a visitor-sent variant key...) gets a leading ' so Excel,
    LibreOffice or Sheets show it as text instead of running it (OWASP's advice for CSV
    injection). Numbers are left alone: a negative change stays a number."""
    if isinstance(value, str) and not isinstance(value, FormattedNumber) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _variant_rows(filters: Filters):
    yield ["page", "page_id", "block", "block_id", "variant", "variant_key", "impressions", "unique_viewers", "clicks",
           "ctr", "ctr_low", "ctr_high", "conversions", "conversion_rate", "conversion_low", "conversion_high",
           "last_touch_conversions", "ctr_lift_over_fallback", "conversion_lift_over_fallback", "seconds_per_impression"]
    for block in report.blocks(filters):
        for v in block.variants:
            yield [block.page_title, block.page_id, block.name, block.block, v.label, v.key, v.impressions, v.viewers, v.clicks,
                   _num(v.ctr), _num(v.ctr_interval[0]), _num(v.ctr_interval[1]), v.conversions, _num(v.conversion_rate),
                   _num(v.conversion_interval[0]), _num(v.conversion_interval[1]), v.last_touch_conversions,
                   _num(v.ctr_lift), _num(v.conversion_lift), _num(v.seconds_per_impression)]


def _mover_rows(filters: Filters):
    yield ["page", "block", "variant", "ctr_this_week", "ctr_week_before", "change", "impressions_this_week"]
    for m in report.top_movers(filters, limit=100):
        yield [m.page_title, m.block_name, m.variant, _num(m.this_week), _num(m.last_week), _num(m.change), m.impressions]


def _alert_rows(filters: Filters):
    yield ["created_at", "kind", "direction", "since", "observed", "baseline", "p_value", "message"]
    for a in Alert.objects.filter(created_at__date__gte=filters.start, created_at__date__lte=filters.end):
        yield [a.created_at.isoformat(), a.kind, a.direction, a.since.isoformat(), _num(a.observed), _num(a.baseline), _num(a.p_value), a.message]


def _model_rows(filters: Filters):
    yield ["version", "label", "impressions", "clicks", "ctr", "ctr_low", "ctr_high", "conversions", "conversion_rate",
           "blocks", "first_seen_hour", "last_seen_hour"]
    for m in report.model_versions(filters):
        yield [m.key, m.label, m.impressions, m.clicks, _num(m.ctr), _num(m.ctr_interval[0]), _num(m.ctr_interval[1]),
               m.conversions, _num(m.conversion_rate), m.blocks, _hour(m.first_hour), _hour(m.last_hour)]


def _hour(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _num(value: float | None) -> str:
    return "" if value is None else FormattedNumber(f"{value:.6g}")


ROWS = {"variants": _variant_rows, "movers": _mover_rows, "alerts": _alert_rows, "models": _model_rows}

urlpatterns = [path("", report_view, name="report")]
