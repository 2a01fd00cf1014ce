"""Choosing a PersonalizedBlock's variant: the first variant whose tags all match wins,
else the fallback. SSR rendering and GraphQL resolution both call `choose_variant`,
which is why the two paths always agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .types import Context

FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class VariantTags:
    """A variant's targeting. Each non-empty set must match; an empty set means "any".

    `regions` holds ISO codes: a country ("GB") matches the visitor's country, a subdivision
    ("GB-ENG", "US-CA") their region. `campaigns` are UTM campaign slugs. The schedule
    (`starts_at` inclusive, `ends_at` exclusive, epoch seconds) bounds when the variant is live.
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
        return self.live_at(now)


def choose_variant(
    variants: Sequence[VariantTags], segments: frozenset[str], context: Context, now: float | None = None
) -> int | None:
    """The index of the first matching variant at `now` (epoch seconds), or None for the fallback."""
    for index, variant in enumerate(variants):
        if variant.matches(segments, context, now):
            return index
    return None
