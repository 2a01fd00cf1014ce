"""The Redis store's one-pass window sums (READ_LUA reads each bucket field once for all of its
windows, issue 21 item 7) give the counts of the reference implementation, the memory store, for
nested hourly and daily windows over months of events."""

from __future__ import annotations

import random
import time

from tailored.core.types import Event, Window
from tailored.profiles.memory import MemoryProfileStore
from tailored.profiles.redis import RedisProfileStore

NOW = time.time()
CATEGORIES = ("books", "outdoors", "electronics")


def test_window_counts_match_the_reference_for_every_span(redis_client):
    rng = random.Random(7)
    settings = {"RATE_LIMIT_PER_MINUTE": 10**9, "DEDUP_SECONDS": 0}
    redis_store = RedisProfileStore(redis_client, retention_seconds=120 * 86400, settings=settings)
    memory_store = MemoryProfileStore(retention_seconds=120 * 86400, settings=settings)
    events = [
        Event(f"e{i}", "page_view", ts=NOW - rng.choice((rng.uniform(0, 50), rng.uniform(0, 85 * 24))) * 3600,
              category=rng.choice(CATEGORIES), item=str(rng.randint(1, 5)))
        for i in range(600)
    ]
    for start in range(0, len(events), 20):
        for store in (redis_store, memory_store):
            store.record("v", events[start:start + 20], NOW)
    hours = (1, 2, 6, 23, 24, 25, 47, 48, 49, 72, 168, 720, 2160)
    windows = [Window(f"page_view|c:{c}", h) for c in CATEGORIES for h in hours]
    windows += [Window("page_view", h) for h in hours] + [Window("page_view|i:3", 6), Window("page_view|c:unseen", 24)]
    rng.shuffle(windows)  # windows of one field need not come together
    got = redis_store.get("v", NOW, windows)
    expected = memory_store.get("v", NOW, windows)
    assert {w: got.count_within(w) for w in windows} == {w: expected.count_within(w) for w in windows}
    assert got.count_within(Window("page_view", 2160)) == 600
    assert sum(got.count_within(Window(f"page_view|c:{c}", 1)) for c in CATEGORIES) < 600  # the windows differ
