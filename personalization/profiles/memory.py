"""In-process profile store: the embedded default for `make demo` and tests. One process only;
it keeps the same data as the Redis store and passes the same contract tests."""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tailored.core.counters import (
    RECENT_ITEMS,
    RECENT_SEARCHES,
    RECENT_SESSIONS,
    PriorState,
    ProfileDelta,
    apply_cart,
    delta_for,
)
from tailored.core.types import Event, Profile, Snapshot, Window, hour_bucket
from tailored.core.windows import window_count
from tailored.visit_memory import landing_fields, parse_kept

from .base import RecordResult, profile_to_json


@dataclass
class _Record:
    first_seen: float | None = None
    last_seen: float | None = None
    page_views: int = 0
    session_starts: list[float] = field(default_factory=list)  # newest first
    sessions: int = 0
    session_content_views: int = 0
    session_converted: bool = False
    event_counts: Counter = field(default_factory=Counter)
    category_views: Counter = field(default_factory=Counter)
    hourly: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    daily: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    cart: dict[str, int] = field(default_factory=dict)
    cart_updated_at: float | None = None
    purchases: int = 0
    lifetime_value: float = 0.0
    last_purchase_at: float | None = None
    items: list[tuple[str, float]] = field(default_factory=list)  # newest first
    searches: list[str] = field(default_factory=list)  # newest first
    dwell: dict[str, tuple[float, int]] = field(default_factory=dict)
    scroll: tuple[int, int] = (0, 0)
    votes: dict[str, str] = field(default_factory=dict)
    last_device: str | None = None
    last_country: str | None = None
    persona: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    preferences: list[str] = field(default_factory=list)
    assignments: dict[str, str] = field(default_factory=dict)
    visit: dict[str, str] = field(default_factory=dict)  # visit_landing, visit_query (visit_memory)
    traits: dict[str, Any] = field(default_factory=dict)  # the copy of the VisitorTraits row (issue 20)
    seen_ids: dict[str, float] = field(default_factory=dict)
    expires_at: float = 0.0


class MemoryProfileStore:
    def __init__(self, retention_seconds: float, settings: Mapping[str, Any] | None = None):
        settings = settings or {}
        self.retention_seconds = retention_seconds
        self.session_gap = settings.get("SESSION_GAP_SECONDS", 1800)
        self.dedup_seconds = settings.get("DEDUP_SECONDS", 86400)
        self.rate_limit = settings.get("RATE_LIMIT_PER_MINUTE", 600)
        self._records: dict[str, _Record] = {}
        self._rates: dict[tuple[str, int], int] = {}
        self._members: dict[tuple[str, int], set[str]] = defaultdict(set)  # (segment, day) -> visitors
        self._erased: dict[str, float] = {}  # as the Redis store's tombstones: id -> when erased
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> MemoryProfileStore:
        return cls(retention_seconds=settings["RETENTION_DAYS"] * 86400, settings=settings)

    def get(self, visitor_id: str, now: float, windows: Collection[Window] = ()) -> Profile:
        with self._lock:
            record = self._live_record(visitor_id, now)
            return _profile(visitor_id, record, now, windows) if record else Profile(visitor_id=visitor_id)

    def get_many(self, visitor_ids: Iterable[str], now: float, windows: Collection[Window] = ()) -> dict[str, Profile]:
        return {visitor_id: self.get(visitor_id, now, windows) for visitor_id in visitor_ids}

    def record(
        self, visitor_id: str, events: Sequence[Event], now: float, snapshot: Snapshot | None = None,
        build_profile: bool = True, resolved_at: float | None = None,
    ) -> RecordResult:
        with self._lock:
            if self._erased.get(visitor_id, -1.0) >= (now if resolved_at is None else resolved_at):
                return RecordResult(stored=(), duplicates=0)  # a request that resolved them before their erasure
            minute = int(now // 60)
            used = self._rates.get((visitor_id, minute), 0)
            if used + len(events) > self.rate_limit:
                return RecordResult(stored=(), duplicates=0, rate_limited=True)
            self._rates = {k: v for k, v in self._rates.items() if k[1] >= minute}
            self._rates[(visitor_id, minute)] = used + len(events)
            # Marks and writes go to a copy that replaces the record only when all of it worked:
            # a batch that fails halfway marks nothing, as in the Redis store (WRITE_LUA).
            record = copy.deepcopy(self._live_record(visitor_id, now) or _Record())
            fresh = _unseen(record, events, now, self.dedup_seconds)
            if fresh and build_profile:
                prior = PriorState(record.last_seen, record.session_starts[0] if record.session_starts else None)
                _apply(record, delta_for(fresh, prior, self.session_gap))
                self._keep_snapshot(visitor_id, record, snapshot, now)
            record.expires_at = now + self.retention_seconds
            self._records[visitor_id] = record
            return RecordResult(stored=tuple(fresh), duplicates=len(events) - len(fresh))

    def _keep_snapshot(self, visitor_id: str, record: _Record, snapshot: Snapshot | None, now: float) -> None:
        if snapshot is None:
            return
        record.last_device = snapshot.device or record.last_device
        record.last_country = snapshot.country or record.last_country
        for slug in snapshot.segments:
            self._members[(slug, int(now // 86400))].add(visitor_id)

    def recent_visitors(self, since: float, limit: int) -> list[str]:
        with self._lock:
            recent = [(r.last_seen, v) for v, r in self._records.items() if r.last_seen and r.last_seen >= since]
        return [visitor for _, visitor in sorted(recent, reverse=True)[:limit]]

    def segment_sizes(self, slug: str, days: int, now: float) -> list[tuple[int, int]]:
        return self.segment_sizes_many([slug], days, now)[slug]

    def segment_sizes_many(self, slugs: Sequence[str], days: int, now: float) -> dict[str, list[tuple[int, int]]]:
        span = range(int(now // 86400) - days + 1, int(now // 86400) + 1)
        with self._lock:
            return {slug: [(day, len(self._members.get((slug, day), ()))) for day in span] for slug in slugs}

    def set_preferences(self, visitor_id: str, categories: Sequence[str]) -> None:
        with self._lock:
            record = self._records.setdefault(visitor_id, _Record(expires_at=time.time() + self.retention_seconds))
            record.preferences = list(dict.fromkeys(categories))

    def set_traits(self, visitor_id: str, traits: Mapping[str, Any]) -> None:
        with self._lock:
            now = time.time()
            record = self._live_record(visitor_id, now) or self._records.setdefault(visitor_id, _Record())
            record.traits = dict(traits)
            record.expires_at = max(record.expires_at, now + self.retention_seconds)

    def set_traits_many(self, traits_by_visitor: Mapping[str, Mapping[str, Any]]) -> None:
        for visitor_id, traits in traits_by_visitor.items():
            self.set_traits(visitor_id, traits)

    def set_model_outputs(self, outputs: Mapping[str, tuple[str | None, Mapping[str, float]]]) -> int:
        written = 0
        with self._lock:
            for visitor_id, (persona, scores) in outputs.items():
                record = self._live_record(visitor_id, time.time())
                if record is None or record.last_seen is None:  # as Redis: only visitors with events
                    continue
                record.persona = persona
                record.scores.update(scores)
                written += 1
        return written

    def assign(self, visitor_id: str, experiment: str, arm: str) -> str:
        with self._lock:
            record = self._records.setdefault(visitor_id, _Record(expires_at=time.time() + self.retention_seconds))
            return record.assignments.setdefault(experiment, arm)

    def clear_assignments(self, experiment: str, visitor_ids: Iterable[str]) -> None:
        with self._lock:
            for visitor_id in visitor_ids:
                record = self._records.get(visitor_id)
                if record is not None:
                    record.assignments.pop(experiment, None)

    def merge(self, source_id: str, target_id: str, now: float) -> None:
        if source_id == target_id:  # nothing to fold (and popping would lose the record)
            return
        with self._lock:
            source = self._records.pop(source_id, None)
            if source is None:
                return
            target = self._live_record(target_id, now) or _Record()
            _merge_into(target, source)
            target.expires_at = now + self.retention_seconds
            self._records[target_id] = target

    def erase(self, visitor_id: str, now: float | None = None) -> dict[str, int]:
        with self._lock:
            held = self._records.pop(visitor_id, None) is not None
            self._erased[visitor_id] = time.time() if now is None else now
            self._rates = {key: n for key, n in self._rates.items() if key[0] != visitor_id}
            for members in self._members.values():
                members.discard(visitor_id)
        return {"profile_keys": int(held), "stream_entries": 0, "dead_letters": 0}

    def purge(self, now: float) -> dict[str, int]:
        with self._lock:
            cutoff_day = int((now - self.retention_seconds) // 86400)
            expired = [visitor_id for visitor_id, record in self._records.items() if record.expires_at < now]
            for visitor_id in expired:
                del self._records[visitor_id]
            old_days = [key for key in self._members if key[1] < cutoff_day]
            for key in old_days:
                del self._members[key]
        return {"profiles": len(expired), "segment days": len(old_days)}

    def export(self, visitor_id: str, now: float) -> dict[str, Any]:
        with self._lock:
            record = self._live_record(visitor_id, now)
            profile = _profile(visitor_id, record, now, ()) if record else Profile(visitor_id=visitor_id)
            buckets = {} if record is None else _bucket_fields(record)
        # Events are stored as they come here: nothing waits in a stream, nothing is dead-lettered.
        return {"profile": profile_to_json(profile), "counters": buckets, "waiting_events": [], "dead_letters": []}

    def ping(self) -> bool:
        return True

    def _live_record(self, visitor_id: str, now: float) -> _Record | None:
        record = self._records.get(visitor_id)
        if record is not None and record.expires_at < now:
            del self._records[visitor_id]
            return None
        return record


def _unseen(record: _Record, events: Sequence[Event], now: float, dedup_seconds: float) -> list[Event]:
    record.seen_ids = {k: ts for k, ts in record.seen_ids.items() if ts > now - dedup_seconds}
    fresh = []
    for event in events:
        if event.id not in record.seen_ids:
            record.seen_ids[event.id] = now
            fresh.append(event)
    return fresh


def _apply(record: _Record, delta: ProfileDelta) -> None:
    record.first_seen = min(filter(None, (record.first_seen, delta.first_ts)))
    record.last_seen = max(filter(None, (record.last_seen, delta.last_ts)))
    record.page_views += delta.page_views
    record.event_counts.update(delta.event_counts)
    record.category_views.update(delta.category_views)
    for (counter, hour), count in delta.buckets.items():
        record.hourly[counter][hour] += count
        record.daily[counter][hour // 24] += count
    session = delta.session
    if session.starts:
        record.session_starts = [*reversed(session.starts), *record.session_starts][:RECENT_SESSIONS]
        record.sessions += len(session.starts)
        record.session_content_views, record.session_converted = session.content_views, session.converted
        record.visit = landing_fields(session.landing)  # a new visit forgets the last one's
    else:
        record.session_content_views += session.content_views
        record.session_converted = record.session_converted or session.converted
    if delta.cart.updated_at is not None:
        record.cart = apply_cart(record.cart, delta.cart)
        record.cart_updated_at = max(filter(None, (record.cart_updated_at, delta.cart.updated_at)))
    record.purchases += delta.purchases
    record.lifetime_value += delta.revenue
    if delta.last_purchase_at is not None:
        record.last_purchase_at = max(filter(None, (record.last_purchase_at, delta.last_purchase_at)))
    record.items = sorted([*delta.items, *record.items], key=lambda pair: -pair[1])[:RECENT_ITEMS]
    record.searches = [*reversed(delta.searches), *record.searches][:RECENT_SEARCHES]
    for category, (seconds, count) in delta.dwell.items():
        old_seconds, old_count = record.dwell.get(category, (0.0, 0))
        record.dwell[category] = (old_seconds + seconds, old_count + count)
    record.scroll = (record.scroll[0] + delta.scroll[0], record.scroll[1] + delta.scroll[1])
    record.votes.update(delta.votes)


def _merge_into(target: _Record, source: _Record) -> None:
    merged = copy.deepcopy(source)
    target.first_seen = min(filter(None, (target.first_seen, merged.first_seen)), default=None)
    target.last_seen = max(filter(None, (target.last_seen, merged.last_seen)), default=None)
    target.page_views += merged.page_views
    target.sessions += merged.sessions
    target.session_starts = sorted({*target.session_starts, *merged.session_starts}, reverse=True)[:RECENT_SESSIONS]
    target.event_counts.update(merged.event_counts)
    target.category_views.update(merged.category_views)
    for counter, buckets in merged.hourly.items():
        target.hourly[counter].update(buckets)
    for counter, buckets in merged.daily.items():
        target.daily[counter].update(buckets)
    for item, quantity in merged.cart.items():
        target.cart[item] = target.cart.get(item, 0) + quantity
    target.cart_updated_at = max(filter(None, (target.cart_updated_at, merged.cart_updated_at)), default=None)
    target.purchases += merged.purchases
    target.lifetime_value += merged.lifetime_value
    target.last_purchase_at = max(filter(None, (target.last_purchase_at, merged.last_purchase_at)), default=None)
    target.items = sorted([*target.items, *merged.items], key=lambda pair: -pair[1])[:RECENT_ITEMS]
    target.searches = [*merged.searches, *target.searches][:RECENT_SEARCHES]
    for category, (seconds, count) in merged.dwell.items():
        old_seconds, old_count = target.dwell.get(category, (0.0, 0))
        target.dwell[category] = (old_seconds + seconds, old_count + count)
    target.scroll = (target.scroll[0] + merged.scroll[0], target.scroll[1] + merged.scroll[1])
    target.votes.update(merged.votes)
    target.assignments = {**merged.assignments, **target.assignments}  # the target keeps its own arms
    # Traits are not merged: the target (the user's id, which a CRM names) keeps its own.
    target.seen_ids.update(merged.seen_ids)
    target.last_device = target.last_device or merged.last_device
    target.last_country = target.last_country or merged.last_country


def _profile(visitor_id: str, record: _Record, now: float, windows: Collection[Window]) -> Profile:
    now_hour = hour_bucket(now)
    return Profile(
        visitor_id=visitor_id,
        first_seen=record.first_seen,
        last_seen=record.last_seen,
        page_views=record.page_views,
        sessions=record.sessions,
        session_start=record.session_starts[0] if record.session_starts else None,
        session_starts=tuple(record.session_starts),
        session_content_views=record.session_content_views,
        session_converted=record.session_converted,
        event_counts=dict(record.event_counts),
        category_views=dict(record.category_views),
        cart=dict(record.cart),
        cart_updated_at=record.cart_updated_at,
        purchases=record.purchases,
        lifetime_value=record.lifetime_value,
        last_purchase_at=record.last_purchase_at,
        recent_items=tuple(record.items),
        recent_searches=tuple(record.searches),
        dwell=dict(record.dwell),
        scroll=record.scroll,
        down_votes=frozenset(item for item, vote in record.votes.items() if vote == "down"),
        last_device=record.last_device,
        last_country=record.last_country,
        persona=record.persona,
        scores=dict(record.scores),
        preferences=tuple(record.preferences),
        assignments=dict(record.assignments),
        visit_landing=record.visit.get("visit_landing") or None,
        visit_query=parse_kept(record.visit.get("visit_query")),
        traits=dict(record.traits),
        windows={
            w: window_count(record.hourly.get(w.counter, {}), record.daily.get(w.counter, {}), w.hours, now_hour)
            for w in windows
        },
    )


def _bucket_fields(record: _Record) -> dict[str, int]:
    fields = {f"{c}|h{h}": n for c, buckets in record.hourly.items() for h, n in buckets.items()}
    fields.update({f"{c}|d{d}": n for c, buckets in record.daily.items() for d, n in buckets.items()})
    return fields

