"""Erasure in the worst order (issue 15 items 1 and 2): the worker is stopped (one of them even
holds a batch it read), the visitor accepts, browses and withdraws; the workers then drain the
stream. Nothing of the visitor may be left or come back: no row, no Redis key, member, field or
stream entry carrying the id, and the export for the old cookie is empty. Three ways to withdraw
(the consent form, DELETE /api/me, GraphQL eraseMyData), on the Redis and the memory store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tailored import worker
from tailored.events.stream import (
    CART_WATCH_KEY,
    CONSUMER_GROUP,
    DEAD_LETTER_KEY,
    STREAM_KEY,
    erased_digest,
)
from tailored.experiments import counting
from tailored.models import DataRightsAudit, WebhookDelivery
from tailored.models import Event as StoredEvent
from tests.experiments.conftest import make_experiment
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

OTHER = "0" * 32  # a visitor who stays
ERASE_MY_DATA = (Path(__file__).parents[2] / "graphql" / "operations" / "erase_my_data.graphql").read_text()


def withdraw_by_form(client):
    assert client.post("/consent/", {"choice": "decline"}).status_code == 303


def withdraw_by_api(client):
    assert client.delete("/api/me").status_code == 200


def withdraw_by_graphql(client):
    response = client.post("/graphql/", {"query": ERASE_MY_DATA}, content_type="application/json")
    assert response.status_code == 200 and response.json()["data"]["eraseMyData"]["errors"] == []


WITHDRAWALS = {"consent form": withdraw_by_form, "DELETE /api/me": withdraw_by_api, "GraphQL eraseMyData": withdraw_by_graphql}


def browse(client, batch: int, pages: int = 3) -> None:
    """What tracker.js sends for `pages` product pages and an add to cart."""
    now = int(time.time() * 1000)
    events = [{"type": "page_view", "id": f"b{batch}-p{n}", "ts": now, "category": "books", "product_id": 40 + n, "url": f"/books/{n}/"} for n in range(pages)]
    events.append({"type": "add_to_cart", "id": f"b{batch}-cart", "ts": now, "product_id": 40})
    response = client.post("/api/events", json.dumps({"events": events}), content_type="application/json")
    assert response.status_code == 202 and response.json()["accepted"] == pages + 1


def accept_and_browse(client, batches: int) -> str:
    """The visitor accepts on the banner and browses; returns their `tl_vid` cookie."""
    assert client.post("/consent/", {"choice": "accept"}).status_code == 303
    cookie = client.cookies["tl_vid"].value
    for batch in range(batches):
        browse(client, batch)
    return cookie


def traces_in_redis(client, visitor_id: str) -> list[str]:
    """Every place in Redis the id appears: key names, members, hash fields and values, list
    items, string values and stream entry fields."""
    found = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if visitor_id in key:
            found.append(f"key {key}")
        elif kind == "zset":
            found += [f"{key} member" for member in client.zrange(key, 0, -1) if visitor_id in member]
        elif kind == "set":
            found += [f"{key} member" for member in client.smembers(key) if visitor_id in member]
        elif kind == "hash":
            found += [f"{key} field {f}" for f, v in client.hgetall(key).items() if visitor_id in f + v]
        elif kind == "list":
            found += [f"{key} item" for item in client.lrange(key, 0, -1) if visitor_id in item]
        elif kind == "string" and not key.startswith("tl:v1:seg:"):  # HyperLogLogs: see below
            found += [f"{key} value"] if visitor_id in (client.get(key) or "") else []
        elif kind == "stream":
            found += [f"{key} entry {i}" for i, fields in client.xrange(key) if visitor_id in json.dumps(fields)]
    return found


def visitor_id_of(cookie: str) -> str:
    return cookie.split(":", 1)[0]


@pytest.mark.parametrize("withdraw", WITHDRAWALS.values(), ids=WITHDRAWALS.keys())
def test_redis_worker_stopped_accept_browse_withdraw_then_drain_leaves_nothing(client, use_redis_store, redis_client, withdraw):
    worker.ensure_group(redis_client)  # the workers exist; they are just stopped
    cookie = accept_and_browse(client, batches=4)
    visitor = visitor_id_of(cookie)
    other = type(client)(HTTP_USER_AGENT=client.defaults["HTTP_USER_AGENT"])
    consent_cookies(other, OTHER)
    browse(other, batch=0)
    # Traces only the worker or the experiments would otherwise leave behind, and a dead letter.
    redis_client.zadd(CART_WATCH_KEY, {visitor: time.time() + 3600})
    counting.counters().expose(make_experiment(key="some-test").key, "control", visitor, time.time())
    redis_client.xadd(DEAD_LETTER_KEY, {"v": visitor, "entry": "0-1", "e": "{}", "reason": "test"})
    WebhookDelivery.objects.create(topic="cart_abandoned", url="https://crm.example/h", payload={"visitor_id": visitor}, next_attempt_at="2030-01-01T00:00Z")
    # One worker read two entries and stalls before storing them (the batch in hand).
    in_hand = worker.read_new(redis_client, worker.Consumer(name="stalled", batch=2, block_ms=0), 2, block=False)
    assert [fields["v"] for _, fields in in_hand] == [visitor, visitor]

    withdraw(client)

    # The stalled worker resumes with its batch, then another drains everything left.
    result = worker.handle_entries(redis_client, in_hand)
    assert (result.events, result.erased_skipped) == (0, 8)
    drain = worker.Consumer(name="drain", batch=10, block_ms=0, claim_idle_seconds=0)
    while worker.process_once(redis_client, drain):
        pass

    assert not StoredEvent.objects.filter(visitor_id=visitor).exists()
    assert StoredEvent.objects.filter(visitor_id=OTHER).count() == 4  # the other visitor is untouched
    assert not WebhookDelivery.objects.filter(payload__visitor_id=visitor).exists()
    assert traces_in_redis(redis_client, visitor) == []
    assert redis_client.xlen(STREAM_KEY) == 0 and redis_client.xpending(STREAM_KEY, CONSUMER_GROUP)["pending"] == 0
    # The audit row names the visitor by digest and says what went, and what the worker skipped.
    audit = DataRightsAudit.objects.get(action="erase")
    assert audit.visitor_id == erased_digest(visitor)
    assert audit.detail["stream_entries"] == 4 and audit.detail["dead_letters"] == 1
    assert audit.detail["skipped_by_worker"] == 8 and audit.detail["webhook_deliveries"] == 1
    assert_export_is_empty(client, cookie)


@pytest.mark.parametrize("withdraw", WITHDRAWALS.values(), ids=WITHDRAWALS.keys())
def test_memory_store_accept_browse_withdraw_leaves_nothing(client, memory_store, withdraw):
    cookie = accept_and_browse(client, batches=2)
    visitor = visitor_id_of(cookie)
    counting.counters().expose(make_experiment(key="some-test").key, "control", visitor, time.time())
    assert memory_store.export(visitor, time.time())["profile"]["page_views"] == 6

    withdraw(client)

    assert memory_store.export(visitor, time.time())["profile"]["page_views"] == 0
    assert counting.counters().exposed_visitors("some-test") == []
    assert not StoredEvent.objects.filter(visitor_id=visitor).exists()
    assert_export_is_empty(client, cookie)


def assert_export_is_empty(client, cookie: str) -> None:
    """GET /api/me/data with the old cookie (and consent, as if restored) finds nothing."""
    client.cookies["tl_vid"] = cookie
    client.cookies["tl_consent"] = "analytics.personalization"
    response = client.get("/api/me/data")
    assert response.status_code == 200
    data = response.json()
    assert data["events"] == []
    assert data["profile"]["page_views"] == 0 and data["profile"]["event_counts"] == {} and data["profile"]["cart"] == {}


def test_a_worker_restarted_after_its_pending_entries_were_erased_acknowledges_them_quietly(client, use_redis_store, redis_client):
    worker.ensure_group(redis_client)
    visitor = visitor_id_of(accept_and_browse(client, batches=2))
    same_name = worker.Consumer(name="restarts", batch=10, block_ms=0)
    assert len(worker.read_new(redis_client, same_name, 10, block=False)) == 2  # then it dies

    withdraw_by_api(client)

    result = worker.handle_entries(redis_client, worker.read_own_pending(redis_client, same_name))
    assert (result.entries, result.events, result.dead_letters) == (2, 0, 0)  # no dead letters for erased data
    assert redis_client.xpending(STREAM_KEY, CONSUMER_GROUP)["pending"] == 0
    assert redis_client.xlen(DEAD_LETTER_KEY) == 0
    assert not StoredEvent.objects.filter(visitor_id=visitor).exists()
