"""The ProfileStore port. Backends (memory, redis) are chosen by dotted path in
PERSONALIZATION["PROFILE_STORE"] and must pass the same contract tests (tests/profiles)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tailored.core.types import Event, Profile, Snapshot, Window


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What `record` did: the events it stored, and how many it had already seen (dedup)."""

    stored: tuple[Event, ...]
    duplicates: int
    rate_limited: bool = False


@runtime_checkable
class ProfileStore(Protocol):
    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ProfileStore: ...

    def get(self, visitor_id: str, now: float, windows: Collection[Window] = ()) -> Profile:
        """The visitor's profile (empty for an unknown visitor) with the asked-for windowed
        counts, in one round trip."""

    def get_many(self, visitor_ids: Iterable[str], now: float, windows: Collection[Window] = ()) -> dict[str, Profile]:
        """Several profiles in one round trip."""

    def record(
        self, visitor_id: str, events: Sequence[Event], now: float, snapshot: Snapshot | None = None,
        build_profile: bool = True, resolved_at: float | None = None,
    ) -> RecordResult:
        """Apply a batch of validated events, skipping event ids seen in the dedup window and
        refusing the whole batch past the per-minute rate limit; the next `get` sees them. The
        snapshot (device, country, segments) is kept for live counts and daily segment sizes.
        With `build_profile` False (analytics-only consent) the events are only deduplicated
        and handed to the workers (aggregate counts, experiments): no profile is built.
        A visitor erased at or after `resolved_at` (when the request learnt who they are) is
        not written again: nothing is stored (a request in flight during their erasure)."""

    def recent_visitors(self, since: float, limit: int) -> list[str]:
        """Visitors who sent events since `since`, most recent first."""

    def segment_sizes(self, slug: str, days: int, now: float) -> list[tuple[int, int]]:
        """(epoch day, distinct visitors) for the last `days` days, oldest first (HyperLogLog)."""

    def segment_sizes_many(self, slugs: Sequence[str], days: int, now: float) -> dict[str, list[tuple[int, int]]]:
        """`segment_sizes` of every slug, in one round trip."""

    def set_preferences(self, visitor_id: str, categories: Sequence[str]) -> None:
        """Replace the categories the visitor chose in the onboarding survey."""

    def set_traits(self, visitor_id: str, traits: Mapping[str, Any]) -> None:
        """Replace the visitor's copy of their declared CRM traits (the VisitorTraits row is the
        record); an empty mapping removes it. Kept without consent, like the row: rules read it
        with the profile, which needs personalization consent. Expires with the retention period,
        renewed by the visitor's events; a merge on login keeps the target's."""

    def set_traits_many(self, traits_by_visitor: Mapping[str, Mapping[str, Any]]) -> None:
        """`set_traits` for many visitors in one round trip (an import, an API batch)."""

    def set_model_outputs(self, outputs: Mapping[str, tuple[str | None, Mapping[str, float]]]) -> int:
        """Write trained models' outputs: visitor -> (persona, scores). A score replaces the
        previous one of the same name; a persona of None removes the persona. Visitors the store
        no longer holds are skipped (no profile is created without consent). Returns how many
        profiles were written."""

    def assign(self, visitor_id: str, experiment: str, arm: str) -> str:
        """Keep the visitor's arm of an experiment unless one is already stored (sticky: a
        visitor keeps their arm when weights change); returns the stored arm."""

    def clear_assignments(self, experiment: str, visitor_ids: Iterable[str]) -> None:
        """Forget these visitors' arms of one experiment (when it is deleted or restarted)."""

    def merge(self, source_id: str, target_id: str, now: float) -> None:
        """Fold one visitor's profile into another's (anonymous -> logged in), then remove the
        source: counters are summed once, and replays of the source's events stay duplicates."""

    def erase(self, visitor_id: str, now: float | None = None) -> dict[str, int]:
        """Remove everything held about the visitor (with Redis, also their entries in the event
        stream and the dead letters, and a tombstone for the workers); counts of what went."""

    def purge(self, now: float) -> dict[str, int]:
        """Enforce RETENTION_DAYS on what expiry alone may not have removed (data written under a
        longer setting); counts by kind."""

    def export(self, visitor_id: str, now: float) -> dict[str, Any]:
        """Everything held about the visitor, as JSON-ready data: "profile", "counters", and the
        batches held before they are stored ("waiting_events") or that could not be ("dead_letters")."""

    def ping(self) -> bool:
        """True when the backend answers."""


def profile_to_json(profile: Profile) -> dict[str, Any]:
    """The profile as the data-export endpoint and the GraphQL API show it."""
    scroll_total, scroll_count = profile.scroll
    return {
        "visitor_id": profile.visitor_id,
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "page_views": profile.page_views,
        "sessions": profile.sessions,
        "session_start": profile.session_start,
        "session_starts": list(profile.session_starts),
        "event_counts": dict(profile.event_counts),
        "category_views": dict(profile.category_views),
        "cart": dict(profile.cart),
        "cart_updated_at": profile.cart_updated_at,
        "purchases": profile.purchases,
        "lifetime_value": round(profile.lifetime_value, 2),
        "last_purchase_at": profile.last_purchase_at,
        "recent_items": [{"item": item, "ts": ts} for item, ts in profile.recent_items],
        "recent_searches": list(profile.recent_searches),
        "dwell": {
            category: {"seconds": round(seconds, 3), "count": count, "average": round(seconds / count, 3)}
            for category, (seconds, count) in profile.dwell.items()
            if count
        },
        "scroll": {
            "count": scroll_count,
            "average_depth": round(scroll_total / scroll_count, 2) if scroll_count else None,
        },
        "down_votes": sorted(profile.down_votes),
        "last_device": profile.last_device,
        "last_country": profile.last_country,
        "persona": profile.persona,
        "scores": dict(profile.scores),
        "preferences": list(profile.preferences),
        "assignments": dict(profile.assignments),
        "visit_landing": profile.visit_landing,
        "visit_query": dict(profile.visit_query),
        "traits": dict(profile.traits),
    }
