"""Export and erasure reach every entry the streams can hold: a dead-letter stream full to
DEAD_LETTER_MAXLEN, a long event stream, within a request's Redis budget. A real Redis (the
session's) and the test database, through GET /api/me/data and DELETE /api/me."""

from __future__ import annotations

import json
import logging
import time

import pytest

from tailored import conf, worker
from tailored.core.types import Event
from tailored.events.stream import (
    DEAD_LETTER_KEY,
    DEAD_LETTER_MAXLEN,
    STREAM_KEY,
    erasure_times,
)
from tailored.profiles import redis as redis_store
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

VISITOR = "d" * 32


@pytest.fixture
def stream(redis_client, use_redis_store):
    worker.ensure_group(redis_client)
    return redis_client


def fill_dead_letters(client, n: int) -> None:
    """Other visitors' dead letters as the worker writes them (a bad deploy refused a column...)."""
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        fields = {"v": f"{i:032x}", "entry": "0-1", "e": '{"id":"x","type":"page_view"}', "reason": "refused by the database: test"}
        pipe.xadd(DEAD_LETTER_KEY, fields, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()


def mine(client) -> list[str]:
    return [entry_id for entry_id, fields in client.xrevrange(DEAD_LETTER_KEY, count=5) if fields.get("v") == VISITOR]


def dead_letter(event_id: str) -> worker.DeadLetter:
    return worker.DeadLetter("1-1", VISITOR, {"id": event_id, "type": "page_view"}, "refused by the database: test")


def test_the_newest_dead_letter_of_a_full_stream_is_exported_and_erased_within_the_request_budget(client, stream):
    fill_dead_letters(stream, DEAD_LETTER_MAXLEN)
    worker.send_to_dead_letters(stream, [dead_letter("mine")])  # the newest of 100,000
    assert stream.xlen(DEAD_LETTER_KEY) >= DEAD_LETTER_MAXLEN and mine(stream)
    consent_cookies(client, VISITOR)

    started = time.monotonic()
    response = client.get("/api/me/data")  # under REDIS_REQUEST_BUDGET_SECONDS, as every request
    exported_in = time.monotonic() - started
    assert response.status_code == 200, response.content
    [letter] = response.json()["dead_letters"]
    assert letter["held"] == {"id": "mine", "type": "page_view"} and "refused by the database" in letter["reason"]

    response = client.delete("/api/me")
    assert response.status_code == 200, response.content
    assert response.json()["erased"]["dead_letters"] == 1
    assert mine(stream) == []
    assert stream.xlen(DEAD_LETTER_KEY) >= DEAD_LETTER_MAXLEN  # the others' stay
    print(f"\nexport over {stream.xlen(DEAD_LETTER_KEY)} dead letters: {exported_in:.2f} s")


def test_dead_letters_at_both_ends_of_the_stream_are_found(stream):
    from tailored.erasure import erase_visitor, export_visitor

    worker.send_to_dead_letters(stream, [dead_letter("oldest")])
    fill_dead_letters(stream, 60_000)
    worker.send_to_dead_letters(stream, [dead_letter("newest")])
    exported = export_visitor(VISITOR, None)
    assert [letter["held"]["id"] for letter in exported["dead_letters"]] == ["oldest", "newest"]
    assert erase_visitor(VISITOR)["dead_letters"] == 2
    assert stream.xlen(DEAD_LETTER_KEY) == 60_000


def test_a_batch_waiting_behind_a_long_backlog_is_exported_and_erased(client, stream):
    """The event stream holds up to STREAM_MAXLEN entries while the workers are down."""
    pipe = stream.pipeline(transaction=False)
    for i in range(60_000):
        pipe.xadd(STREAM_KEY, {"v": f"{i:032x}", "e": "[]"})
    pipe.execute()
    consent_cookies(client, VISITOR)
    body = {"events": [{"type": "page_view", "id": "late", "ts": int(time.time() * 1000), "category": "books"}]}
    assert client.post("/api/events", json.dumps(body), content_type="application/json").status_code == 202

    waiting = client.get("/api/me/data").json()["waiting_events"]
    assert [[event["id"] for event in batch["events"]] for batch in waiting] == [["late"]]
    response = client.delete("/api/me")
    assert response.status_code == 200 and response.json()["erased"]["stream_entries"] == 1
    assert stream.xlen(STREAM_KEY) == 60_000


def test_an_erasure_stops_reading_a_huge_event_backlog_and_the_tombstone_covers_the_rest(stream, monkeypatch, caplog):
    store = conf.get_profile_store()
    now = time.time()
    store.record(VISITOR, [Event("e1", "page_view", ts=now, category="books")], now)  # waits in the stream
    pipe = stream.pipeline(transaction=False)
    for i in range(3_000):  # appended after it
        pipe.xadd(STREAM_KEY, {"v": f"{i:032x}", "e": "[]"})
    pipe.execute()
    worker.send_to_dead_letters(stream, [dead_letter("dead")])
    monkeypatch.setattr(redis_store, "SCAN_PAGE", 100)
    monkeypatch.setattr(redis_store, "ERASE_STREAM_SECONDS", 0.0)  # give up after the first page

    with caplog.at_level(logging.WARNING, logger="tailored.profiles.redis"):
        detail = store.erase(VISITOR, now)
    assert "erasure read the first 100 entries of tl:v1:events only" in caplog.text
    assert detail["stream_entries"] == 1  # it was in that first page
    assert detail["dead_letters"] == 1  # dead letters are always read to the end
    assert VISITOR in erasure_times(stream, [VISITOR])


def test_a_request_that_gave_up_on_redis_gets_no_fresh_allowance_for_a_scan(stream):
    from tailored import redis_guard

    store = conf.get_profile_store()
    with redis_guard.request_budget(0.5) as budget:
        budget.failed = True  # a timeout earlier in the request
        with pytest.raises(redis_guard.Unavailable):
            store.export(VISITOR, time.time())
