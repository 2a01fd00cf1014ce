"""Redis specifics: keys share one hash tag per visitor and expire; batches reach the stream."""

import time

from tailored.core.types import Event
from tailored.events.stream import STREAM_KEY, decode_entry
from tailored.profiles.redis import RedisProfileStore

RETENTION = 90 * 86400


def test_every_key_of_a_visitor_shares_its_hash_tag_and_expires(redis_client):
    store = RedisProfileStore(redis_client, retention_seconds=RETENTION)
    now = time.time()
    store.record("abc", [Event("e1", "page_view", ts=now, category="books", item="7"), Event("e2", "add_to_cart", ts=now, item="7")], now)
    visitor_keys = [k for k in redis_client.keys("tl:v1:{abc}:*") if ":rate:" not in k and not k.endswith(":pruned")]
    assert {k.split(":")[-1] for k in visitor_keys} >= {"p", "seen", "w", "t", "cart", "items", "sess", "ids"}
    for key in visitor_keys:
        assert 0 < redis_client.ttl(key) <= RETENTION
    assert all(k.startswith("tl:v1:{abc}:") for k in redis_client.keys("tl:v1:{*"))


def test_each_batch_is_one_stream_entry_with_only_new_events(redis_client):
    store = RedisProfileStore(redis_client, retention_seconds=RETENTION)
    now = time.time()
    store.record("abc", [Event("e1", "page_view", ts=now), Event("e2", "page_view", ts=now)], now)
    store.record("abc", [Event("e2", "page_view", ts=now), Event("e3", "search", ts=now, attrs={"query": "tent"})], now)
    entries = redis_client.xrange(STREAM_KEY)
    decoded = [decode_entry(fields) for _, fields in entries]
    assert [(visitor, [e.id for e in events]) for visitor, events in decoded] == [("abc", ["e1", "e2"]), ("abc", ["e3"])]
    assert decoded[1][1][0].attrs == {"query": "tent"}


def test_buckets_that_fall_out_of_their_window_are_dropped_when_rewritten(redis_client):
    store = RedisProfileStore(redis_client, retention_seconds=RETENTION)
    now = time.time()
    hour = int(now // 3600)
    store.record("abc", [Event("old", "page_view", ts=now - 60 * 3600, category="books")], now - 60 * 3600)
    store.record("abc", [Event("new", "page_view", ts=now, category="books")], now)
    hourly = redis_client.hget("tl:v1:{abc}:w", "page_view|c:books|h")
    daily = redis_client.hget("tl:v1:{abc}:w", "page_view|c:books|d")
    assert hourly == f"{hour}:1"  # the 60-hour-old bucket is gone from the hourly series
    assert sorted(daily.split()) == sorted({f"{(hour - 60) // 24}:1", f"{hour // 24}:1"} if (hour - 60) // 24 != hour // 24 else {f"{hour // 24}:2"})
