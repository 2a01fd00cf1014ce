"""The ProfileStore port. Backends (memory, redis) are chosen by dotted path in
PERSONALIZATION["PROFILE_STORE"] and must pass the same contract tests (tests/profiles)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from personalization.core.types import Event, Profile

HOURLY_BUCKETS_KEPT = 48


@runtime_checkable
class ProfileStore(Protocol):
    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ProfileStore: ...

    def get(self, visitor_id: str, now: float) -> Profile:
        """The visitor's profile (an empty one for an unknown visitor), in one round trip."""

    def get_many(self, visitor_ids: Iterable[str], now: float) -> dict[str, Profile]:
        """Several profiles in one round trip."""

    def record(self, visitor_id: str, events: Sequence[Event]) -> None:
        """Apply a batch of validated events; the next `get` sees them."""

    def erase(self, visitor_id: str) -> None:
        """Remove everything held about the visitor."""

    def ping(self) -> bool:
        """True when the backend answers."""
