"""The Redis store's one-pass window sums (READ_LUA reads each bucket field once for all of its
windows, issue 21 item 7) give the counts of the reference implementation, the memory store, for
nested hourly and daily windows over months of events."""

from __future__ import annotations

import random
import time

from tailored.core.types import Event, Window, hour_bucket
from tailored.profiles.memory import MemoryProfileStore
from tailored.profiles.redis import SUMS_FIELD, RedisProfileStore

NOW = time.time()
CATEGORIES = ("books", "outdoors", "electronics")


def _stores(redis_client):
    """The Redis store and the reference (the memory store), with no rate limit or dedup."""
    settings = {"RATE_LIMIT_PER_MINUTE": 10**9, "DEDUP_SECONDS": 0}
    return (
        RedisProfileStore(redis_client, retention_seconds=120 * 86400, settings=settings),
        MemoryProfileStore(retention_seconds=120 * 86400, settings=settings),
    )


def test_window_counts_match_the_reference_for_every_span(redis_client):
    rng = random.Random(7)
    redis_store, memory_store = _stores(redis_client)
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
    redis_store, memory_store = _stores(redis_client)
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


def _counts(store, now, windows, visitor="v"):
    """The counts a page request reads (the Redis store keeps its sums for the next one)."""
    profile = getattr(store, "get_for_request", store.get)(visitor, now, windows)
    return {w: profile.count_within(w) for w in windows}


def test_sums_kept_between_reads_stay_the_reference_through_writes_hours_and_rewrites(redis_client):
    """READ_LUA keeps its window sums in the visitor's hash and, within an hour, adds only the
    pairs written since. A visitor browsing for four days, events in order and late ones, with a
    read after every batch (and some twice): every read equals the reference, across new hours,
    series rewritten (old buckets leaving, compaction) and a second segment set read alongside."""
    rng = random.Random(5)
    redis_store, memory_store = _stores(redis_client)
    start = NOW - 4 * 86400
    windows = [Window(f"page_view|c:{c}", h) for c in CATEGORIES for h in (1, 3, 24, 48, 72, 720)]
    windows += [Window("page_view", h) for h in (2, 6, 168)]
    other = [Window("page_view", 12), Window("page_view|c:books", 48)]  # another plan, its own sums
    minute = 0
    for n in range(400):
        minute += rng.choice((1, 2, 5, 20, 45))
        now = start + minute * 60
        batch = [
            Event(f"e{n}-{i}", "page_view", ts=now - rng.choice((0, 0, 0, rng.uniform(0, 40 * 3600))), category=rng.choice(CATEGORIES))
            for i in range(rng.randint(1, 5))
        ]
        for store in (redis_store, memory_store):
            store.record("v", batch, now)
        for plan in (windows, other) if n % 7 == 0 else (windows,) * rng.choice((1, 2)):
            assert _counts(redis_store, now, plan) == _counts(memory_store, now, plan), (n, now)
    kept = redis_client.hget("tl:v1:{v}:w", SUMS_FIELD)
    assert kept and kept.split(" ")[0].endswith(f":{hour_bucket(now)}")


def test_a_read_uses_the_kept_sums_and_a_rewrite_drops_them(redis_client):
    redis_store, _ = _stores(redis_client)
    windows = [Window("page_view", 6), Window("page_view", 24)]
    events = [Event(f"e{i}", "page_view", ts=NOW - i * 3600, category="books") for i in range(30)]  # 30 hours
    redis_store.record("v", events, NOW)
    assert _counts(redis_store, NOW, windows) == {windows[0]: 6, windows[1]: 24}
    kept = redis_client.hget("tl:v1:{v}:w", SUMS_FIELD)
    head, offset, *sums = kept.split(" ")  # one series (hourly page views), two windows
    assert len(sums) == 2
    # The kept sums are what a read starts from: raised behind its back, the read shows it.
    redis_client.hset("tl:v1:{v}:w", SUMS_FIELD, " ".join([head, offset, *(str(int(n) + 100) for n in sums)]))
    assert _counts(redis_store, NOW, windows) == {windows[0]: 106, windows[1]: 124}
    # A batch whose hour is too old for the series' window rewrites the series: the sums go.
    redis_store.record("v", [Event("late", "page_view", ts=NOW - 30 * 86400, category="books")], NOW + 60 * 86400)
    assert redis_client.hget("tl:v1:{v}:w", SUMS_FIELD) is None


def test_kept_sums_are_no_series_for_export_or_merge_and_cost_light_visitors_nothing(redis_client):
    redis_store, _ = _stores(redis_client)
    windows = [Window("page_view", 24), Window("page_view", 48)]
    redis_store.record("v", [Event(f"e{i}", "page_view", ts=NOW - i * 3600, category="books") for i in range(20)], NOW)
    assert _counts(redis_store, NOW, windows) == dict.fromkeys(windows, 20)
    assert redis_client.hexists("tl:v1:{v}:w", SUMS_FIELD)
    assert SUMS_FIELD not in redis_store.export("v", NOW)["counters"]
    redis_store.merge("v", "w2", NOW)
    assert _counts(redis_store, NOW, windows) == dict.fromkeys(windows, 0)  # merged away
    assert _counts(redis_store, NOW, windows, "w2")[windows[0]] == 20
    assert SUMS_FIELD not in redis_store.export("w2", NOW)["counters"]
    # A light visitor's short series are summed in no time: nothing is kept, so their hash stays
    # the compact encoding; a stranger's read creates no key.
    redis_store.record("light", [Event("a", "page_view", ts=NOW - 60, category="books")], NOW)
    assert _counts(redis_store, NOW, windows, "light")[windows[0]] == 1
    assert not redis_client.hexists("tl:v1:{light}:w", SUMS_FIELD)
    assert redis_client.object("encoding", "tl:v1:{light}:w") == "listpack"
    _counts(redis_store, NOW, windows, "stranger")
    assert not redis_client.exists("tl:v1:{stranger}:w")


def test_only_page_requests_keep_sums_and_other_reads_leave_them_be(redis_client):
    """The worker, live counts and admin views read with windows of their own: they sum every
    pair and keep nothing, so a page request's kept sums are neither used nor replaced by them
    (keeping one plan's sums at a time, they would make each next request sum everything)."""
    redis_store, memory_store = _stores(redis_client)
    request_windows = [Window("page_view", 6), Window("page_view", 24)]
    worker_windows = [Window("page_view", 12), Window("page_view", 48)]
    events = [Event(f"e{i}", "page_view", ts=NOW - i * 3600, category="books") for i in range(30)]
    for store in (redis_store, memory_store):
        store.record("v", events, NOW)
    assert _counts(redis_store, NOW, request_windows) == {request_windows[0]: 6, request_windows[1]: 24}
    kept = redis_client.hget("tl:v1:{v}:w", SUMS_FIELD)
    worker = redis_store.get_many(["v"], NOW, worker_windows)["v"]
    assert {w: worker.count_within(w) for w in worker_windows} == {worker_windows[0]: 12, worker_windows[1]: 30}
    assert _counts(memory_store, NOW, worker_windows) == {w: worker.count_within(w) for w in worker_windows}  # the reference
    assert redis_client.hget("tl:v1:{v}:w", SUMS_FIELD) == kept
    # Nor does a plain read use them: raised behind its back, only the request's read shows it.
    head, offset, *sums = kept.split(" ")
    redis_client.hset("tl:v1:{v}:w", SUMS_FIELD, " ".join([head, offset, *(str(int(n) + 100) for n in sums)]))
    assert redis_store.get("v", NOW, request_windows).count_within(request_windows[0]) == 6
    assert _counts(redis_store, NOW, request_windows)[request_windows[0]] == 106
