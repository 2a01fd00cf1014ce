"""Which segments a visitor is in: every enabled segment's compiled rule over (profile, context)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .rules import CompiledRule
from .types import Context, Profile


@dataclass(frozen=True, slots=True)
class SegmentDefinition:
    slug: str
    rule: CompiledRule
    priority: int = 0


def matching_segments(
    segments: Iterable[SegmentDefinition], profile: Profile, context: Context, now: float
) -> frozenset[str]:
    """The slugs of the segments whose rule holds for this visitor now."""
    return frozenset(s.slug for s in segments if s.rule.matches(profile, context, now))
