"""What the segment admin shows at a glance (issue 16 item 3): how many visitors match a rule
now, how many were in each segment per day, and how many pages target each segment.

Every figure here is fetched for many segments at once, so the segment list costs the same
queries and Redis round trips for one segment or fifty: one pass over the recently active
visitors evaluates every rule, one pipeline reads every segment's daily sizes, one query counts
the pages. The edit view asks the same functions about its one segment, so its live count and
the list's "Size now" are the same number by construction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Min
from wagtail.models import Page, ReferenceIndex

from tailored import conf
from tailored.context.request import configured_daypart
from tailored.core.context import minute_of_day, weekday
from tailored.core.rules import CompiledRule, RuleError
from tailored.core.types import Context, Profile

from .models import Event, Segment

logger = logging.getLogger(__name__)

LIVE_HOURS = 24  # "match now" counts the visitors active in the last day
SCAN_LIMIT = 10_000  # at most this many of them, the most recent first
PROFILE_BATCH = 500  # profiles read per round trip
TREND_DAYS = 7
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """How many of the `scanned` recently active visitors each rule matches now."""

    matching: dict[str, int]
    scanned: int


@dataclass(frozen=True, slots=True)
class ListFigures:
    """One row of the segment list: size now (None when the store is down), the daily sizes of
    the last TREND_DAYS days (empty when unavailable) and how many pages target the segment."""

    size_now: int | None
    scanned: int | None
    trend: tuple[tuple[date, int], ...]
    pages: int


def live_counts(rules: Mapping[str, CompiledRule], now: float | None = None, hours: int = LIVE_HOURS, limit: int = SCAN_LIMIT) -> LiveCounts:
    """For each rule, how many of the visitors active in the last `hours` match it now: the
    definition of `services.live_count` (each visitor's last device and country, the site's
    current time), for many rules in one pass over the visitors."""
    now = time.time() if now is None else now
    store = conf.get_profile_store()
    visitor_ids = store.recent_visitors(now - hours * 3600, limit)
    windows = frozenset().union(*(rule.windows for rule in rules.values()))
    site_time = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(settings.TIME_ZONE))
    matching = dict.fromkeys(rules, 0)
    for start in range(0, len(visitor_ids), PROFILE_BATCH):
        profiles = store.get_many(visitor_ids[start : start + PROFILE_BATCH], now, windows)
        for profile in profiles.values():
            context = last_known_context(profile, site_time)
            for key, rule in rules.items():
                matching[key] += rule.matches(profile, context, now)
    return LiveCounts(matching, len(visitor_ids))


def last_known_context(profile: Profile, site_time: datetime) -> Context:
    """The request context a live count assumes for a visitor who is not requesting anything:
    their last device and country, and the site's local time."""
    return Context(
        device=profile.last_device or "desktop",
        country=profile.last_country,
        daypart=configured_daypart(minute_of_day(site_time)),
        weekday=weekday(site_time),
        local_hour=site_time.hour,
        local_minute=minute_of_day(site_time),
    )


def daily_sizes(slugs: Sequence[str], days: int, now: float | None = None) -> dict[str, list[tuple[date, int]]]:
    """Distinct visitors in each segment per day (UTC), oldest first: the HyperLogLog counts the
    profile store keeps as visitors browse (a visitor counts on a day when a visit that day
    matched the rule). With Redis, one pipeline for every segment."""
    now = time.time() if now is None else now
    by_day = conf.get_profile_store().segment_sizes_many(slugs, days, now)
    return {slug: [(EPOCH + timedelta(days=day), count) for day, count in sizes] for slug, sizes in by_day.items()}


def pages_using(segments: Sequence[Segment]) -> dict[int, int]:
    """How many pages target each segment, in one query: the pages whose personalized blocks
    have a variant naming the segment, as Wagtail's reference index records them
    (`VariantBlock.extract_references`); the segment's Usage view lists the same pages."""
    if not segments:
        return {}
    rows = (
        ReferenceIndex.objects.filter(
            to_content_type=ContentType.objects.get_for_model(Segment),
            to_object_id__in=[str(segment.pk) for segment in segments],
            base_content_type=ContentType.objects.get_for_model(Page),
        )
        .values("to_object_id")
        .annotate(pages=Count("object_id", distinct=True))
    )
    found = {int(row["to_object_id"]): row["pages"] for row in rows}
    return {segment.pk: found.get(segment.pk, 0) for segment in segments}


def list_figures(segments: Sequence[Segment], now: float | None = None) -> dict[int, ListFigures]:
    """Size now, 7-day trend and pages for every segment of a list page. A store that is down
    leaves the store's figures empty, never the list."""
    now = time.time() if now is None else now
    rules = _compiled(segments)
    counts = guarded(lambda: live_counts(rules, now), "live counts")
    sizes = guarded(lambda: daily_sizes([s.slug for s in segments], TREND_DAYS, now), "segment sizes") or {}
    pages = pages_using(segments)
    return {
        segment.pk: ListFigures(
            size_now=counts.matching.get(segment.slug) if counts else None,
            scanned=counts.scanned if counts else None,
            trend=tuple(sizes.get(segment.slug, ())),
            pages=pages[segment.pk],
        )
        for segment in segments
    }


def _compiled(segments: Sequence[Segment]) -> dict[str, CompiledRule]:
    rules = {}
    for segment in segments:
        try:
            rules[segment.slug] = segment.compiled()
        except RuleError:  # only a row edited behind the model's back (save() validates)
            logger.warning("segment %s has a rule that does not compile", segment.slug)
    return rules


def guarded(fetch, what: str):
    """`fetch()`, or None when the profile store fails: admin screens work without its figures."""
    try:
        return fetch()
    except Exception:
        logger.exception("%s failed", what)
        return None


def first_stored_event_day(since: date) -> date | None:
    """The first day (UTC) from `since` on with a stored Event row: how far back the history
    the worker and `tailored_train --synthetic` stored goes, for the size chart's caption."""
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    first = Event.objects.filter(ts__gte=start).aggregate(first=Min("ts"))["first"]
    return first.astimezone(UTC).date() if first is not None else None
