"""How a batch of events changes a profile, as one delta that every store applies the same way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .types import Event, hour_bucket

RECENT_ITEMS = 50


@dataclass(frozen=True, slots=True)
class ProfileDelta:
    page_views: int
    first_ts: float | None
    last_ts: float | None
    category_hours: Mapping[tuple[str, int], int]
    items: tuple[str, ...]  # oldest first, so pushing them in order leaves the newest on top

    @property
    def is_empty(self) -> bool:
        return self.first_ts is None


def delta_for(events: Sequence[Event]) -> ProfileDelta:
    """Sum a batch: page views, per-category views per hour, and the items seen in time order."""
    ordered = sorted(events, key=lambda e: e.ts)
    page_views = [e for e in ordered if e.type == "page_view"]
    category_hours = Counter((e.category, hour_bucket(e.ts)) for e in page_views if e.category)
    return ProfileDelta(
        page_views=len(page_views),
        first_ts=ordered[0].ts if ordered else None,
        last_ts=ordered[-1].ts if ordered else None,
        category_hours=dict(category_hours),
        items=tuple(e.item for e in page_views if e.item)[-RECENT_ITEMS:],
    )
