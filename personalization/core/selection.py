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
    """A variant's targeting. Each non-empty set must match; an empty set means "any"."""

    key: str
    segments: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    dayparts: frozenset[str] = frozenset()

    def matches(self, segments: frozenset[str], context: Context) -> bool:
        if self.segments and self.segments.isdisjoint(segments):
            return False
        if self.devices and context.device not in self.devices:
            return False
        return not (self.dayparts and context.daypart not in self.dayparts)


def choose_variant(
    variants: Sequence[VariantTags], segments: frozenset[str], context: Context
) -> int | None:
    """The index of the first matching variant, or None for the fallback."""
    for index, variant in enumerate(variants):
        if variant.matches(segments, context):
            return index
    return None
