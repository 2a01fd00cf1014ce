"""Choosing a PersonalizedBlock's variant: the first variant whose tags all match wins,
else the fallback. SSR rendering and GraphQL resolution both call `choose_variant`,
which is why the two paths always agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from .context import minute_of_day
from .types import WEEKDAYS, Context

FALLBACK = "fallback"


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A weekly schedule: on `weekdays`, from `start` (inclusive) to `end` (exclusive), in
    minutes after local midnight. A window whose start is after its end crosses midnight and
    belongs to the day it starts on: Friday 22:00-02:00 includes Saturday 01:00. `zone` None
    means the visitor's local time (their context); a zone name means that zone's (the site's)."""

    weekdays: frozenset[str]
    start: int
    end: int
    zone: str | None = None

    def active(self, context: Context, now: float | None) -> bool:
        if self.zone is None:
            day, minute = context.weekday, context.local_minute
        elif now is None:
            return False
        else:
            local = datetime.fromtimestamp(now, UTC).astimezone(_zone(self.zone))
            day, minute = WEEKDAYS[local.weekday()], minute_of_day(local)
        if day not in WEEKDAYS or minute is None:
            return False
        if self.start < self.end:
            return self.start <= minute < self.end and day in self.weekdays
        if minute >= self.start:
            return day in self.weekdays
        previous_day = WEEKDAYS[WEEKDAYS.index(day) - 1]
        return minute < self.end and previous_day in self.weekdays


@dataclass(frozen=True, slots=True)
class VariantTags:
    """A variant's targeting. Each non-empty set must match; an empty set means "any".

    `regions` holds ISO codes: a country ("GB") matches the visitor's country, a subdivision
    ("GB-ENG", "US-CA") their region. `campaigns` are UTM campaign slugs. The schedule
    (`starts_at` inclusive, `ends_at` exclusive, epoch seconds) bounds when the variant is live;
    `recurrence` repeats it weekly (Recurrence).
    """

    key: str
    segments: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    dayparts: frozenset[str] = frozenset()
    weekdays: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    weather: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()
    starts_at: float | None = None
    ends_at: float | None = None
    recurrence: Recurrence | None = None  # e.g. every weekday 08:30-10:00

    @property
    def scheduled(self) -> bool:
        return self.starts_at is not None or self.ends_at is not None

    def live_at(self, now: float | None) -> bool:
        """Whether the schedule allows the variant at `now`. Without a clock (`now` None) a
        scheduled variant never shows: a campaign must not leak before its start."""
        if not self.scheduled:
            return True
        if now is None:
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        return not (self.ends_at is not None and now >= self.ends_at)

    def matches(self, segments: frozenset[str], context: Context, now: float | None = None) -> bool:
        if self.segments and self.segments.isdisjoint(segments):
            return False
        if self.devices and context.device not in self.devices:
            return False
        if self.dayparts and context.daypart not in self.dayparts:
            return False
        if self.weekdays and context.weekday not in self.weekdays:
            return False
        if self.regions and context.country not in self.regions and context.region not in self.regions:
            return False
        if self.weather and context.weather not in self.weather:
            return False
        if self.campaigns and context.utm_campaign not in self.campaigns:
            return False
        if self.recurrence is not None and not self.recurrence.active(context, now):
            return False
        return self.live_at(now)


def choose_variant(
    variants: Sequence[VariantTags], segments: frozenset[str], context: Context, now: float | None = None
) -> int | None:
    """The index of the first matching variant at `now` (epoch seconds), or None for the fallback."""
    for index, variant in enumerate(variants):
        if variant.matches(segments, context, now):
            return index
    return None
