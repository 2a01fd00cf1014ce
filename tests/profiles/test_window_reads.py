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


def test_series_appended_batch_by_batch_stay_bounded_and_count_like_the_reference(redis_client):
    """Batches arrive hour after hour for 100 days, some with late events from earlier hours.
    The Redis store adds to a series' last pair or appends one (BUCKETS_LUA), and rewrites a
    series whole only when its first bucket has left the window or it has grown too long: the
    counts stay the reference's and no series grows without bound."""
    rng = random.Random(11)
    settings = {"RATE_LIMIT_PER_MINUTE": 10**9, "DEDUP_SECONDS": 0}
    redis_store = RedisProfileStore(redis_client, retention_seconds=120 * 86400, settings=settings)
    memory_store = MemoryProfileStore(retention_seconds=120 * 86400, settings=settings)
    start = NOW - 100 * 86400
    windows = [Window("page_view", h) for h in (1, 6, 24, 48, 168, 720, 2160)] + [Window("page_view|c:books", 24)]
    for hour in range(0, 100 * 24, 3):
        now = start + hour * 3600
        batch = [
            Event(f"e{hour}-{i}", "page_view", ts=now - rng.choice((0, 0, 0, rng.uniform(0, 30))) * 3600,
                  category=rng.choice(CATEGORIES))
            for i in range(rng.randint(1, 4))
        ]
        for store in (redis_store, memory_store):
            store.record("v", batch, now)
        if hour % 240 == 0:
            got, expected = redis_store.get("v", now, windows), memory_store.get("v", now, windows)
            assert {w: got.count_within(w) for w in windows} == {w: expected.count_within(w) for w in windows}
    series = redis_client.hgetall("tl:v1:{v}:w")
    assert series  # the same visitor's hourly and daily series
    assert max(len(raw) for raw in series.values()) < 2 * 2000  # compacted: never far past the size that rewrites
    hourly = [int(pair.split(":")[0]) for pair in series["page_view|h"].split()]
    assert max(hourly) - min(hourly) < 2 * 48  # old hours leave with the next rewrite
