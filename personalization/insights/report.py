"""The figures of Reports -> Personalization insights, from `InsightDay` rows only (a dashboard
never reads raw events): per page and block, each variant's impressions, CTR and conversion rate
with Wilson intervals and lift over the fallback; a daily CTR line per variant; top movers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Q, QuerySet, Sum

from tailored.core.insights import lift, rate, wilson_interval
from tailored.models import InsightDay

from .charts import LineChart, rate_chart
from .labels import FALLBACK, block_names, page_titles

SUMS = {name: Sum(name) for name in ("impressions", "viewers", "clicks", "conversions", "last_touch_conversions", "view_ms")}
MOVER_MIN_IMPRESSIONS = 100


@dataclass(frozen=True, slots=True)
class Filters:
    start: date
    end: date  # inclusive
    segment: str = ""
    device: str = ""
    country: str = ""
    page: int | None = None
    block: str = ""

    def rows(self, start: date | None = None, end: date | None = None) -> QuerySet:
        where = Q(day__gte=start or self.start, day__lte=end or self.end, segment=self.segment)
        if self.device:
            where &= Q(device=self.device)
        if self.country:
            where &= Q(country=self.country)
        if self.page:
            where &= Q(page_id=self.page)
        if self.block:
            where &= Q(block=self.block)
        return InsightDay.objects.filter(where)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass
class VariantFigures:
    key: str
    label: str
    impressions: int
    viewers: int
    clicks: int
    conversions: int
    last_touch_conversions: int
    view_ms: int
    ctr: float | None = None
    ctr_interval: tuple[float, float] = (0.0, 0.0)
    conversion_rate: float | None = None
    conversion_interval: tuple[float, float] = (0.0, 0.0)
    ctr_lift: float | None = None
    conversion_lift: float | None = None

    @property
    def seconds_per_impression(self) -> float | None:
        return self.view_ms / 1000 / self.impressions if self.impressions else None


@dataclass
class BlockFigures:
    page_id: int
    page_title: str
    block: str
    name: str
    variants: list[VariantFigures] = field(default_factory=list)
    chart: LineChart | None = None

    @property
    def impressions(self) -> int:
        return sum(v.impressions for v in self.variants)


def variant_figures(key: str, label: str, sums: dict[str, int]) -> VariantFigures:
    figures = VariantFigures(key, label, **{name: sums.get(name) or 0 for name in SUMS})
    figures.ctr, figures.ctr_interval = rate(figures.clicks, figures.impressions), wilson_interval(figures.clicks, figures.impressions)
    figures.conversion_rate = rate(figures.conversions, figures.impressions)
    figures.conversion_interval = wilson_interval(figures.conversions, figures.impressions)
    return figures


def blocks(filters: Filters) -> list[BlockFigures]:
    """Every block with impressions in the range, busiest first, its variants fallback first."""
    totals, series = _totals_and_daily_ctr(filters)
    grouped: dict[tuple[int, str], list[tuple[str, dict[str, int]]]] = defaultdict(list)
    for (page_id, block, variant), sums in totals.items():
        grouped[(page_id, block)].append((variant, sums))
    titles, names = page_titles(p for p, _ in grouped), block_names(p for p, _ in grouped)
    found = []
    for (page_id, block), rows in grouped.items():
        known = names.get(block)
        figures = BlockFigures(page_id, titles.get(page_id, "Headless or unknown page"), block, known.name if known else f"Block {block[:8]}")
        for variant, sums in rows:
            label = known.variants.get(variant, variant) if known else variant
            figures.variants.append(variant_figures(variant, label, sums))
        figures.variants.sort(key=lambda v: (v.key != FALLBACK, -v.impressions))
        _add_lifts(figures.variants)
        lines = {v.label: series.get((page_id, block, v.key), {}) for v in figures.variants}
        figures.chart = rate_chart(filters.days, {label: [by_day.get(d) for d in filters.days] for label, by_day in lines.items()})
        found.append(figures)
    return sorted(found, key=lambda b: -b.impressions)


def _add_lifts(variants: list[VariantFigures]) -> None:
    # Lift over the fallback: what personalizing this block adds over showing everyone the default.
    fallback = next((v for v in variants if v.key == FALLBACK), None)
    for variant in variants:
        if fallback is not None and variant is not fallback:
            variant.ctr_lift = lift(variant.ctr, fallback.ctr)
            variant.conversion_lift = lift(variant.conversion_rate, fallback.conversion_rate)


Cell = tuple[int, str, str]  # (page, block, variant)


def _totals_and_daily_ctr(filters: Filters) -> tuple[dict[Cell, dict[str, int]], dict[Cell, dict[date, float]]]:
    """Each variant's sums over the range and its CTR per day, from one grouped query: the
    daily sums are added up here rather than read again (90 days of 200 variants are 18,000
    tuples; a second grouping of the same rows cost more than this loop)."""
    names = tuple(SUMS)
    rows = filters.rows().values_list("page_id", "block", "variant", "day").annotate(**SUMS).order_by()
    totals: dict[Cell, dict[str, int]] = {}
    series: dict[Cell, dict[date, float]] = defaultdict(dict)
    for page_id, block, variant, day, *sums in rows:
        cell = (page_id, block, variant)
        running = totals.get(cell)
        if running is None:
            totals[cell] = dict(zip(names, (value or 0 for value in sums), strict=True))
        else:
            for name, value in zip(names, sums, strict=True):
                running[name] += value or 0
        impressions, clicks = sums[0] or 0, sums[2] or 0
        if impressions:
            series[cell][day] = clicks / impressions
    return totals, series


@dataclass(frozen=True, slots=True)
class Mover:
    page_title: str
    block_name: str
    variant: str
    this_week: float
    last_week: float
    change: float
    impressions: int


def top_movers(filters: Filters, limit: int = 5) -> list[Mover]:
    """The variants whose CTR changed most in the 7 days to the range's end against the 7 before
    (at least MOVER_MIN_IMPRESSIONS impressions in each week)."""
    split = filters.end - timedelta(days=6)
    rows = (
        filters.rows(start=split - timedelta(days=7), end=filters.end)
        .values("page_id", "block", "variant")
        .annotate(
            i_now=Sum("impressions", filter=Q(day__gte=split)), c_now=Sum("clicks", filter=Q(day__gte=split)),
            i_before=Sum("impressions", filter=Q(day__lt=split)), c_before=Sum("clicks", filter=Q(day__lt=split)),
        ).order_by()
    )
    candidates = []
    for row in rows:
        if (row["i_now"] or 0) < MOVER_MIN_IMPRESSIONS or (row["i_before"] or 0) < MOVER_MIN_IMPRESSIONS or not row["c_before"]:
            continue
        now, before = row["c_now"] / row["i_now"], row["c_before"] / row["i_before"]
        candidates.append((row, now, before, now / before - 1))
    candidates.sort(key=lambda c: -abs(c[3]))
    chosen = candidates[:limit]
    pages = [row["page_id"] for row, *_ in chosen]
    titles, names = page_titles(pages), block_names(pages)
    movers = []
    for row, now, before, change in chosen:
        known = names.get(row["block"])
        movers.append(Mover(
            titles.get(row["page_id"], "Headless or unknown page"), known.name if known else row["block"][:8],
            known.variants.get(row["variant"], row["variant"]) if known else row["variant"], now, before, change, row["i_now"],
        ))
    return movers


def choices(start: date, end: date) -> dict[str, list[str]]:
    """The filter menus: the enabled segments, and the countries with rows in the range (read
    from the every-visitor rows only, through the (segment, day) index: a fraction of the table)."""
    from tailored.models import Segment

    # The menu needs the countries seen lately, not a scan of a whole 90-day range.
    everyone = InsightDay.objects.filter(segment="", day__gte=max(start, end - timedelta(days=6)), day__lte=end)
    return {
        "segments": list(Segment.objects.filter(enabled=True).order_by("slug").values_list("slug", flat=True)),
        "countries": sorted(everyone.exclude(country="").values_list("country", flat=True).distinct()),
    }
