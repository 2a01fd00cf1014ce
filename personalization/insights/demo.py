"""Demo insights (issue 17): four weeks of seasonal hourly counts for every variant of the demo
homepage's personalized blocks, per segment, device and country, as the worker's flush would have
stored them, and one seeded anomaly (a CTR drop in the last two hours) that the alert check then
finds. `tailored_train --synthetic` runs it, so Reports -> Personalization insights is not empty on
`make demo`. Aggregate counts only: no visitor, no event row."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction

from tailored.models import InsightDay, InsightHour, TrafficHour

from .labels import FALLBACK, MODEL_PREFIX, block_names

DAYS = 29  # the alerts' baseline is the same hours of the 4 weeks before
DEVICES = {"desktop": 0.5, "mobile": 0.4, "tablet": 0.1}
COUNTRIES = {"GB": 0.7, "DE": 0.3}
SEEDED_DROP = 0.15  # the seeded anomaly's CTR, as a share of the variant's usual one
SWITCH_DAYS = 5  # the current recommender version serves the last five days
STATS = ("impressions", "viewers", "clicks", "conversions", "last_touch_conversions", "view_ms")


@dataclass(frozen=True, slots=True)
class DemoCell:
    page_id: int
    block: str
    variant: str
    segments: tuple[str, ...]
    peak: float  # impressions an hour at the daily peak, all devices and countries
    ctr: float
    conversion: float
    hours: tuple[int, int] | None = None  # the epoch hours [from, until) it served; None: all of them


def demo_cells(page_id: int, rng) -> list[DemoCell]:
    """Every variant of the page's personalized blocks: the fallback for everyone, each variant for
    the segments it targets; the first block (the hero) is the busiest. Recommendation blocks
    have model versions instead (`recommendation_cells`)."""
    cells = []
    decided = [(block, names) for block, names in block_names([page_id]).items() if not names.recommendation]
    for index, (block, names) in enumerate(decided):
        busy = 3.0 if index == 0 else 1.0
        for variant in names.variants:
            segments = _targeted(page_id, block, variant)
            base = 0.04 if variant == FALLBACK else rng.uniform(0.05, 0.09)
            peak = (400 if variant == FALLBACK else 250) * busy
            cells.append(DemoCell(page_id, block, variant, segments, peak, base, base * rng.uniform(0.15, 0.3)))
    return cells


def recommendation_cells(page_id: int, end_hour: int, rng) -> list[DemoCell]:
    """The page's recommendation blocks, every visitor: the recommender's previous version until
    five days ago, the current one since (so the report's default week shows both; a slightly
    better CTR: a new version that works, so no model_ctr alert), and a tenth of the lists
    served without a model ("popular": visitors the model cannot place) throughout."""
    previous, current = demo_versions(end_hour)
    switch = end_hour - SWITCH_DAYS * 24
    cells = []
    for block, names in block_names([page_id]).items():
        if not names.recommendation:
            continue
        ctr = rng.uniform(0.035, 0.045)
        cells += [
            DemoCell(page_id, block, f"{MODEL_PREFIX}{previous}", (), 180, ctr, ctr * 0.2, (end_hour - DAYS * 24, switch)),
            DemoCell(page_id, block, f"{MODEL_PREFIX}{current}", (), 180, ctr * 1.08, ctr * 0.22, (switch, end_hour)),
            DemoCell(page_id, block, "popular", (), 20, ctr * 0.7, ctr * 0.15),
        ]
    return cells


def demo_versions(end_hour: int) -> tuple[str, str]:
    """(previous, current) recommender versions, in the registry's format (UTC time, sortable):
    the current is the trained one when there is one (training runs first in `make demo`), so
    the report's table and the model_ctr check compare the version the registry serves."""
    from .monitoring import RECOMMENDER, current_version

    previous, current = _version(end_hour - DAYS * 24), current_version(RECOMMENDER)
    if current is None or current <= previous:  # untrained, or trained before the demo's weeks
        current = _version(end_hour - SWITCH_DAYS * 24)
    return previous, current


def _version(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _targeted(page_id: int, block: str, variant: str) -> tuple[str, ...]:
    from wagtail.models import Page

    page = Page.objects.get(pk=page_id).specific
    for item in getattr(page, "body", None).raw_data if hasattr(page, "body") else ():
        if item.get("id") == block:
            for v in (item.get("value") or {}).get("variants") or []:
                if v.get("id") == variant:
                    return tuple((v.get("value") or {}).get("segments") or ())
    return ("new-visitors",) if variant == FALLBACK else ()


def shape(hour: int) -> float:
    """Daily rhythm, never below a third of the peak (so the demo's last hours have traffic)."""
    h = hour % 24
    return 0.35 + 0.65 * math.sin(math.pi * max(0, h - 6) / 18) ** 2


def load_demo_insights(page_id: int, seed: int = 7, now: float | None = None, say: Callable[[str], None] = print) -> int:
    """Store the demo's hourly and daily rows (once: skipped when the page has rows) and raise the
    seeded anomaly's alert. Returns the hourly rows written."""
    import numpy as np

    from . import alerts

    if InsightHour.objects.filter(page_id=page_id).exists():
        say("demo insights already loaded")
        return 0
    rng = np.random.default_rng(seed)
    end_hour = int((time.time() if now is None else now) // 3600)
    cells = demo_cells(page_id, _Uniform(rng))
    seeded = next((c for c in cells if c.variant != FALLBACK and c.segments), cells[0]) if cells else None
    # Their own draws: the personalized blocks' numbers do not depend on the recommendation blocks.
    cells += recommendation_cells(page_id, end_hour, _Uniform(np.random.default_rng(seed + 1)))
    hourly, daily, traffic = [], defaultdict(lambda: defaultdict(int)), defaultdict(int)
    for hour in range(end_hour - DAYS * 24, end_hour):
        moment = datetime.fromtimestamp(hour * 3600, tz=UTC)
        for cell in cells:
            if cell.hours is not None and not cell.hours[0] <= hour < cell.hours[1]:
                continue
            # A collapse (a broken link, say): found in the alert window even at night's traffic.
            drop = SEEDED_DROP if cell is seeded and hour >= end_hour - 2 else 1.0
            for row in _rows(cell, hour, shape(hour), drop, rng):
                hourly.append(InsightHour(hour=moment, **row))
                key = tuple(row[k] for k in ("page_id", "block", "variant", "segment", "device", "country"))
                for stat in STATS:
                    daily[(moment.date(), key)][stat] += row[stat]
                if not row["segment"]:
                    traffic[moment] += row["impressions"] * 3  # page views, clicks and the rest
    with transaction.atomic():
        InsightHour.objects.bulk_create(hourly, batch_size=5000)
        InsightDay.objects.bulk_create([_day(day, key, stats) for (day, key), stats in daily.items()], batch_size=5000)
        TrafficHour.objects.bulk_create([TrafficHour(hour=h, events=n) for h, n in traffic.items()], batch_size=5000, ignore_conflicts=True)
    raised = alerts.check(end_hour)
    say(f"stored demo insights: {len(hourly)} hourly rows over {DAYS} days for {len(cells)} variants; "
        f"seeded a CTR drop ({len(raised)} alert{'s' if len(raised) != 1 else ''} raised)")
    return len(hourly)


def _rows(cell: DemoCell, hour: int, level: float, drop: float, rng) -> list[dict]:
    rows = []
    for device, device_share in DEVICES.items():
        for country, country_share in COUNTRIES.items():
            n = int(rng.poisson(cell.peak * level * device_share * country_share))
            if not n:
                continue
            clicks = int(rng.binomial(n, min(cell.ctr * drop, 1.0)))
            conversions = int(rng.binomial(n, cell.conversion))
            counts = {"impressions": n, "viewers": int(n * 0.85), "clicks": clicks, "conversions": conversions,
                      "last_touch_conversions": int(conversions * 0.7), "view_ms": int(n * rng.uniform(2000, 6000))}
            where = {"page_id": cell.page_id, "block": cell.block, "variant": cell.variant, "device": device, "country": country}
            rows += [{**where, "segment": segment, **counts} for segment in ("", *cell.segments)]
    return rows


def _day(day, key, stats) -> InsightDay:
    page_id, block, variant, segment, device, country = key
    return InsightDay(day=day, page_id=page_id, block=block, variant=variant, segment=segment, device=device, country=country, **stats)


class _Uniform:
    """random.uniform over numpy's generator, so one seed decides everything."""

    def __init__(self, rng) -> None:
        self.rng = rng

    def uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

