"""A Redis profile's recent items and session starts are parsed only when something reads them
(issue 21 item 7): segments that read neither leave them raw, and rules that read them see the
same values the memory store gives."""

from __future__ import annotations

import time

from tailored.core.rules import compile_rule
from tailored.core.segments import SegmentDefinition, matching_segments
from tailored.core.types import Context, Event, LazyTuple
from tailored.profiles.memory import MemoryProfileStore
from tailored.profiles.redis import RedisProfileStore

NOW = time.time()


def _events() -> list[Event]:
    # Two visits an hour apart (two sessions), three product views in each.
    return [
        Event(f"e{visit}{i}", "page_view", ts=NOW - 3600 * visit - 60 * i, category="books", item=str(10 * visit + i))
        for visit in (1, 0) for i in range(3)
    ]


def _segments(*rules: tuple[str, dict]) -> tuple[SegmentDefinition, ...]:
    return tuple(SegmentDefinition(slug, compile_rule(rule)) for slug, rule in rules)


def test_segments_that_read_neither_leave_them_unparsed_and_rules_that_do_see_the_reference_values(redis_client):
    redis_store = RedisProfileStore(redis_client, retention_seconds=90 * 86400)
    memory_store = MemoryProfileStore(retention_seconds=90 * 86400)
    for store in (redis_store, memory_store):
        store.record("v", _events(), NOW)
    profile = redis_store.get_for_request("v", NOW)
    assert isinstance(profile.recent_items, LazyTuple) and isinstance(profile.session_starts, LazyTuple)

    cheap = _segments(("regular", {"field": "profile.page_views", "op": "gte", "value": 3}))
    assert matching_segments(cheap, profile, Context(), NOW) == {"regular"}
    assert len(profile.recent_items) == 6 and len(profile.session_starts) == 2
    assert profile.recent_items._items is None and profile.session_starts._items is None  # still raw

    reading = _segments(
        ("saw-item-2", {"field": "profile.viewed_items", "op": "contains", "value": "2"}),
        ("two-visits", {"field": "profile.sessions_7d", "op": "gte", "value": 2}),
        ("saw-item-99", {"field": "profile.viewed_items", "op": "contains", "value": "99"}),
    )
    assert matching_segments(reading, profile, Context(), NOW) == {"saw-item-2", "two-visits"}
    reference = memory_store.get("v", NOW)
    assert profile.recent_items == reference.recent_items
    assert profile.session_starts == reference.session_starts
