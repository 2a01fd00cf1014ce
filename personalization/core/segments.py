"""Which segments a visitor is in: every enabled segment's compiled rule over (profile, context)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .rules import CompiledRule
from .types import Context, Profile, Window


@dataclass(frozen=True, slots=True)
class SegmentDefinition:
    slug: str
    rule: CompiledRule
    priority: int = 0


@dataclass(frozen=True, slots=True)
class SegmentSet:
    """The enabled segments, and every windowed count their rules read (fetched with the profile)."""

    definitions: tuple[SegmentDefinition, ...] = ()

    @property
    def windows(self) -> frozenset[Window]:
        return frozenset().union(*(d.rule.windows for d in self.definitions))


def matching_segments(
    segments: Iterable[SegmentDefinition], profile: Profile, context: Context, now: float
) -> frozenset[str]:
    """The slugs of the segments whose rule holds for this visitor now."""
    return frozenset(s.slug for s in segments if s.rule.matches(profile, context, now))
