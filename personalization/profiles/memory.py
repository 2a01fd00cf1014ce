"""In-process profile store: the embedded default for `make demo` and tests. One process only."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from personalization.core.counters import RECENT_ITEMS, delta_for
from personalization.core.types import Event, Profile, hour_bucket

from .base import HOURLY_BUCKETS_KEPT


@dataclass
class _Record:
    page_views: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    category_views: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    recent_items: list[str] = field(default_factory=list)
    expires_at: float = 0.0


class MemoryProfileStore:
    def __init__(self, retention_seconds: float):
        self.retention_seconds = retention_seconds
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> MemoryProfileStore:
        return cls(retention_seconds=settings["RETENTION_DAYS"] * 86400)

    def get(self, visitor_id: str, now: float) -> Profile:
        with self._lock:
            record = self._live_record(visitor_id)
            if record is None:
                return Profile(visitor_id=visitor_id)
            oldest = hour_bucket(now) - HOURLY_BUCKETS_KEPT + 1
            return Profile(
                visitor_id=visitor_id,
                page_views=record.page_views,
                first_seen=record.first_seen,
                last_seen=record.last_seen,
                category_views={
                    category: {b: n for b, n in buckets.items() if b >= oldest}
                    for category, buckets in record.category_views.items()
                },
                recent_items=tuple(record.recent_items),
            )

    def get_many(self, visitor_ids: Iterable[str], now: float) -> dict[str, Profile]:
        return {visitor_id: self.get(visitor_id, now) for visitor_id in visitor_ids}

    def record(self, visitor_id: str, events: Sequence[Event]) -> None:
        delta = delta_for(events)
        if delta.is_empty:
            return
        with self._lock:
            record = self._live_record(visitor_id) or _Record()
            record.page_views += delta.page_views
            record.first_seen = min(filter(None, (record.first_seen, delta.first_ts)))
            record.last_seen = max(filter(None, (record.last_seen, delta.last_ts)))
            for (category, bucket), count in delta.category_hours.items():
                buckets = record.category_views[category]
                buckets[bucket] = buckets.get(bucket, 0) + count
            record.recent_items = [*reversed(delta.items), *record.recent_items][:RECENT_ITEMS]
            record.expires_at = time.time() + self.retention_seconds
            self._records[visitor_id] = record

    def erase(self, visitor_id: str) -> None:
        with self._lock:
            self._records.pop(visitor_id, None)

    def ping(self) -> bool:
        return True

    def _live_record(self, visitor_id: str) -> _Record | None:
        record = self._records.get(visitor_id)
        if record is not None and record.expires_at < time.time():
            del self._records[visitor_id]
            return None
        return record
