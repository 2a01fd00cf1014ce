"""One schema, enforced once (issue 14 item 4): the API refuses what the worker cannot store, and the
worker stores the good events of an entry while moving the bad ones to the dead-letter stream,
counted in its log and on the admin dashboard. A real Redis and the test database."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.contrib.auth import get_user_model

from tailored import worker
from tailored.core.types import Event
from tailored.events.schema import (
    EVENT_TYPES,
    STORED_LENGTHS,
    FieldSpec,
    Rejection,
    register_event_type,
    validate_events,
)
from tailored.events.stream import DEAD_LETTER_KEY, STREAM_KEY, encode_batch
from tailored.models import Event as EventRow
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

VISITOR = "d" * 32
NOW = time.time()


def drain(client) -> worker.StepResult:
    who = worker.Consumer(name="w1", batch=10, block_ms=0)
    total = worker.StepResult()
    while result := worker.process_once(client, who, now=NOW):
        total += result
    return total


def view(event_id: str, **fields) -> Event:
    return Event(id=event_id, type="page_view", ts=NOW, category="books", **fields)


@pytest.fixture
def stream(redis_client):
    worker.ensure_group(redis_client)
    return redis_client


def test_a_bad_event_costs_only_itself_and_waits_in_the_dead_letter_stream(stream, caplog):
    # What an API that accepted any product id length put on the stream before this fix.
    bad = view("bad", item="9" * 100)
    stream.xadd(STREAM_KEY, encode_batch(VISITOR, [view("good-1"), bad, view("good-2")]))

    with caplog.at_level(logging.ERROR, logger="tailored.worker"):
        result = drain(stream)

    assert set(EventRow.objects.values_list("event_id", flat=True)) == {"good-1", "good-2"}
    assert (result.events, result.dead_letters, result.poison) == (2, 1, 0)
    (_id, letter), = stream.xrange(DEAD_LETTER_KEY)
    assert (letter["v"], json.loads(letter["e"])["id"]) == (VISITOR, "bad")
    assert "item must have at most 64 characters" in letter["reason"]
    assert "dead letter" in caplog.text and "item must have at most 64" in caplog.text
    assert "1 dead-lettered" in result.describe()


def test_an_unreadable_entry_is_dead_lettered_whole_and_its_neighbours_are_stored(stream):
    stream.xadd(STREAM_KEY, {"v": VISITOR, "e": "{not json"})
    stream.xadd(STREAM_KEY, {"v": "x" * 65, "e": "[]"})
    stream.xadd(STREAM_KEY, encode_batch(VISITOR, [view("fine")]))

    result = drain(stream)

    assert list(EventRow.objects.values_list("event_id", flat=True)) == ["fine"]
    assert (result.poison, result.dead_letters) == (2, 2)
    reasons = [fields["reason"] for _id, fields in stream.xrange(DEAD_LETTER_KEY)]
    assert reasons[0].startswith("unreadable entry: JSONDecodeError") and "visitor id" in reasons[1]


def test_every_event_the_api_accepts_the_worker_stores(client, stream, use_redis_store):
    now_ms = int(time.time() * 1000)
    consent_cookies(client, VISITOR)
    body = {"events": [
        {"type": "page_view", "id": "ok", "ts": now_ms, "product_id": 7},
        {"type": "page_view", "id": "long", "ts": now_ms, "product_id": 10**19},
        {"type": "click", "id": "far", "ts": now_ms, "target": "buy", "x": 2**31},
    ]}

    response = client.post("/api/events", json.dumps(body), content_type="application/json")

    assert response.status_code == 207
    assert [(r["index"], r["field"]) for r in response.json()["rejected"]] == [(1, "product_id"), (2, "x")]
    assert "at most 9223372036854775807" in response.json()["rejected"][0]["reason"]
    result = drain(stream)
    assert response.json()["accepted"] == result.events == EventRow.objects.count() == 1
    assert result.dead_letters == 0


def test_the_schema_limits_are_the_columns_the_worker_stores_into():
    columns = {"visitor_id": "visitor_id", "id": "event_id", "type": "type", "category": "category", "item": "item", "url": "url"}
    assert {name: EventRow._meta.get_field(column).max_length for name, column in columns.items()} == STORED_LENGTHS


def test_the_admin_dashboard_counts_the_dead_letters(client, stream, use_redis_store):
    stream.xadd(STREAM_KEY, encode_batch(VISITOR, [view("bad-1", item="9" * 100), view("bad-2", url="/" * 3000)]))
    drain(stream)
    client.force_login(get_user_model().objects.get(username="editor"))

    page = client.get("/admin/").content.decode()

    assert "2 events could not be stored by the worker" in page and DEAD_LETTER_KEY in page


def test_a_registered_type_looser_than_the_columns_is_held_to_what_the_worker_stores():
    # Another app's hook declared product ids as free text: the API still refuses what the worker
    # could not store, instead of accepting it for the worker to drop.
    register_event_type("quote_request", {"product_id": FieldSpec(str, required=True)})
    try:
        events, rejected = validate_events(
            [{"type": "quote_request", "id": f"q{n}", "ts": int(NOW * 1000), "product_id": "p" * n} for n in (64, 65)], NOW
        )
    finally:
        del EVENT_TYPES["quote_request"]

    assert [event.item for event in events] == ["p" * 64]
    assert rejected == [Rejection(1, "product_id", "must have at most 64 characters")]


def test_the_export_holds_what_waits_in_the_stream_and_in_the_dead_letters(client, stream, use_redis_store):
    consent_cookies(client, VISITOR)
    body = {"events": [{"type": "page_view", "id": "w1", "ts": int(NOW * 1000), "category": "books"}]}
    assert client.post("/api/events", json.dumps(body), content_type="application/json").status_code == 202
    waiting = client.get("/api/me/data").json()["waiting_events"]
    assert [[event["id"] for event in batch["events"]] for batch in waiting] == [["w1"]]  # before the worker stores it
    assert waiting[0]["received_at"] == pytest.approx(time.time(), abs=60)
    stream.xadd(STREAM_KEY, encode_batch(VISITOR, [view("ok"), view("bad", item="x" * 65)]))
    drain(stream)
    data = client.get("/api/me/data").json()
    assert data["waiting_events"] == []
    assert {event["id"] for event in data["events"]} == {"w1", "ok"}
    [letter] = data["dead_letters"]
    assert "item must have at most 64" in letter["reason"] and "x" * 65 in json.dumps(letter["held"])
    client.delete("/api/me")  # and erasure takes both
    assert stream.xlen(DEAD_LETTER_KEY) == 0
