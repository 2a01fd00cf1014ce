"""Atomic ingestion (issue 14 item 3): a batch's dedup marks and profile writes commit together or
not at all, so a batch whose write failed is stored once when retried, never reported as
duplicates. A real Redis; failures are genuine ones (a key of the wrong type, a lone surrogate)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from tailored import conf, worker
from tailored.core.types import Event
from tailored.models import Event as EventRow
from tailored.profiles.redis import RedisProfileStore, visitor_keys
from tests.helpers import consent_cookies
from tests.redis_server import own_redis  # noqa: F401 (a fixture)

VISITOR = "b" * 32
NOW = time.time()


def views(prefix: str = "e", count: int = 3) -> list[Event]:
    return [Event(id=f"{prefix}{i}", type="page_view", ts=NOW - i, category="books", item=str(i + 1)) for i in range(count)]


@pytest.fixture
def store(redis_client):
    return RedisProfileStore(redis_client, retention_seconds=90 * 86400)


def test_a_batch_whose_write_fails_marks_nothing_and_is_stored_once_when_retried(store, redis_client):
    redis_client.set(visitor_keys(VISITOR)["t"], "not a hash")  # the profile write will fail on it

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        store.record(VISITOR, views(), NOW)

    redis_client.delete(visitor_keys(VISITOR)["t"])  # the operator fixes the key
    profile = store.get(VISITOR, NOW)
    assert (profile.page_views, profile.recent_items) == (0, ())  # nothing of the batch was written
    retried = store.record(VISITOR, views(), NOW)
    assert (len(retried.stored), retried.duplicates) == (3, 0)
    profile = store.get(VISITOR, NOW)
    assert (profile.page_views, profile.event_counts, profile.category_views) == (3, {"page_view": 3}, {"books": 3})
    assert store.record(VISITOR, views(), NOW).duplicates == 3  # and now it is a duplicate


@pytest.mark.django_db
def test_the_retried_batch_reaches_the_database_once(store, redis_client):
    redis_client.set(visitor_keys(VISITOR)["cart"], "not a hash")
    batch = [*views(), Event(id="c1", type="add_to_cart", ts=NOW, item="7", attrs={"quantity": 1})]
    with pytest.raises(redis.ResponseError):
        store.record(VISITOR, batch, NOW)
    redis_client.delete(visitor_keys(VISITOR)["cart"])
    store.record(VISITOR, batch, NOW)

    worker.ensure_group(redis_client)
    who = worker.Consumer(name="w1", batch=10, block_ms=0)
    while worker.process_once(redis_client, who, now=NOW):
        pass

    assert sorted(EventRow.objects.values_list("event_id", flat=True)) == ["c1", "e0", "e1", "e2"]
    assert store.get(VISITOR, NOW).cart == {"7": 1}


def test_an_id_repeated_within_a_batch_counts_once(store):
    result = store.record(VISITOR, [*views(count=2), *views(count=2)], NOW)
    assert (len(result.stored), result.duplicates) == (2, 2)
    assert store.get(VISITOR, NOW).page_views == 2


def test_concurrent_copies_of_one_batch_are_stored_once(store, redis_url):
    stores = [RedisProfileStore(redis.Redis.from_url(redis_url, decode_responses=True), retention_seconds=86400) for _ in range(6)]
    results = []
    start = threading.Barrier(len(stores))

    def send(each: RedisProfileStore) -> None:
        start.wait()
        results.append(each.record(VISITOR, views(count=20), NOW))

    threads = [threading.Thread(target=send, args=(each,)) for each in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(len(result.stored) for result in results) == 20
    assert store.get(VISITOR, NOW).page_views == 20


@pytest.mark.django_db
def test_a_search_cut_inside_an_emoji_is_stored_not_lost(client, use_redis_store):
    # What tracker.js sent when query.slice(0, 200) cut an emoji in half: a lone UTF-16 surrogate.
    consent_cookies(client, VISITOR)
    ts = int(time.time() * 1000)
    body = '{"events": [{"type": "search", "id": "s1", "ts": ' + str(ts) + ', "query": "tents \\ud83c"}]}'

    first = client.post("/api/events", body, content_type="application/json")
    again = client.post("/api/events", body, content_type="application/json")

    assert (first.status_code, first.json()["stored"]) == (202, 1)
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 1)
    assert conf.get_profile_store().get(VISITOR, time.time()).recent_searches == ("tents \ufffd",)
    assert json.loads(body)["events"][0]["query"] != "tents \ufffd"  # the body did hold the lone half


def test_a_redis_stopped_as_the_batch_is_written_loses_nothing(own_redis):  # noqa: F811
    """Redis dies as the batch's write is sent and comes back (AOF, as in production): the retry
    stores the batch, because nothing of it was marked."""

    class StoppedBetweenCalls(RedisProfileStore):
        def _write(self, *args, **kwargs):
            own_redis.kill()  # the scripts are loaded; the write's one round trip finds no Redis
            return super()._write(*args, **kwargs)

    with pytest.raises(redis.ConnectionError):
        StoppedBetweenCalls(own_redis.client(), retention_seconds=86400).record(VISITOR, views(), NOW)
    own_redis.start()

    store = RedisProfileStore(own_redis.client(), retention_seconds=86400)
    retried = store.record(VISITOR, views(), NOW)
    assert (len(retried.stored), retried.duplicates) == (3, 0)
    assert store.get(VISITOR, NOW).page_views == 3
