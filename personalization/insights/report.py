"""The figures of Reports -> Personalization insights, from `InsightDay` rows only (a dashboard
never reads raw events): per page and block, each variant's impressions, CTR and conversion rate
with Wilson intervals and lift over the fallback; a daily CTR line per variant; top movers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Max, Min, Q, QuerySet, Sum

from tailored.core.insights import lift, rate, wilson_interval
from tailored.models import InsightDay, InsightHour

from .charts import LineChart, rate_chart
from .labels import FALLBACK, MODEL_PREFIX, RECOMMENDATION_LABELS, block_names, page_titles

SUMS = {name: Sum(name) for name in ("impressions", "viewers", "clicks", "conversions", "last_touch_conversions", "view_ms")}
MOVER_MIN_IMPRESSIONS = 100
# The first and last day a filter may name. The report moves a chosen day at most 13 days back
# (the movers' two weeks) and one day forward (the hourly rows' bound); `date` stops at years 1
# and 9999, so a year's margin each side keeps every sum inside it (the view answers 400 beyond).
EARLIEST_DAY, LATEST_DAY = date(2, 1, 1), date(9998, 12, 31)


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
    (at least MOVER_MIN_IMPRESSIONS impressions in each week). filters.end is at least EARLIEST_DAY,
    so the 13 days back stay in the calendar."""
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


@dataclass
class ModelVersionFigures:
    """The recommendation blocks' figures for one model version (or one fallback), all blocks
    together: what the version's lists did, to compare it with the one before (issue 17 item 5)."""

    key: str  # "model:<version>", or the fallback's name ("popular"...)
    label: str
    impressions: int
    clicks: int
    conversions: int
    blocks: int
    ctr: float | None = None
    ctr_interval: tuple[float, float] = (0.0, 0.0)
    conversion_rate: float | None = None
    first_hour: datetime | None = None
    last_hour: datetime | None = None


def model_versions(filters: Filters) -> list[ModelVersionFigures]:
    """Per model version of the recommender, newest first, then the fallbacks (lists served
    without a model): impressions, clicks, CTR with its Wilson interval, conversion rate, and the
    first and last hour in the range with an impression (from the hourly rows kept)."""
    served = Q(variant__startswith=MODEL_PREFIX) | Q(variant__in=list(RECOMMENDATION_LABELS))
    rows = list(
        filters.rows().filter(served).values("page_id", "block", "variant")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"), conversions=Sum("conversions")).order_by()
    )
    # A fallback's name could also be an experiment arm's key: counted only for recommendation blocks.
    names = block_names({row["page_id"] for row in rows if not row["variant"].startswith(MODEL_PREFIX)})
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        known = names.get(row["block"])
        if not row["variant"].startswith(MODEL_PREFIX) and not (known and known.recommendation):
            continue
        running = totals.setdefault(row["variant"], {"impressions": 0, "clicks": 0, "conversions": 0, "blocks": 0})
        for name in ("impressions", "clicks", "conversions"):
            running[name] += row[name] or 0
        running["blocks"] += 1
    seen = _hours_seen(filters, list(totals))
    found = []
    for key, sums in totals.items():
        label = f"Model {key.removeprefix(MODEL_PREFIX)}" if key.startswith(MODEL_PREFIX) else RECOMMENDATION_LABELS[key]
        figures = ModelVersionFigures(key, label, **sums)
        figures.ctr, figures.ctr_interval = rate(figures.clicks, figures.impressions), wilson_interval(figures.clicks, figures.impressions)
        figures.conversion_rate = rate(figures.conversions, figures.impressions)
        figures.first_hour, figures.last_hour = seen.get(key, (None, None))
        found.append(figures)
    # Versions are UTC timestamps (tailored.ml.registry): their order is their age.
    models = sorted((f for f in found if f.key.startswith(MODEL_PREFIX)), key=lambda f: f.key, reverse=True)
    return models + sorted((f for f in found if not f.key.startswith(MODEL_PREFIX)), key=lambda f: f.key)


def _hours_seen(filters: Filters, variants: list[str]) -> dict[str, tuple[datetime, datetime]]:
    """variant -> (first, last) hour with impressions in the range and filters (one query)."""
    if not variants:
        return {}
    where = Q(
        variant__in=variants, segment=filters.segment, impressions__gt=0,
        hour__gte=datetime.combine(filters.start, time(), UTC), hour__lt=datetime.combine(filters.end + timedelta(days=1), time(), UTC),
    )
    for name in ("device", "country", "block"):
        if getattr(filters, name):
            where &= Q(**{name: getattr(filters, name)})
    if filters.page:
        where &= Q(page_id=filters.page)
    rows = InsightHour.objects.filter(where).values("variant").annotate(first=Min("hour"), last=Max("hour")).order_by()
    return {row["variant"]: (row["first"], row["last"]) for row in rows}


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
