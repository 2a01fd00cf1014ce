"""Batch validation: the first problem is reported with its index and field."""

import json

import pytest

from personalization.events.schema import BatchError, parse_batch

NOW = 1_764_000_000.0
NOW_MS = int(NOW * 1000)


def batch(*events) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def good(**overrides):
    return {"type": "page_view", "id": "evt-1", "ts": NOW_MS, "category": "electronics", "product_id": 12, **overrides}


def parse(body: bytes):
    return parse_batch(body, NOW, max_events=100, max_bytes=64 * 1024)


def test_a_good_batch_becomes_events():
    (event,) = parse(batch(good()))
    assert (event.id, event.type, event.ts, event.category, event.item) == ("evt-1", "page_view", NOW, "electronics", "12")


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        (good(type="teleport"), "type", "unknown event type 'teleport'"),
        ({k: v for k, v in good().items() if k != "id"}, "id", "required"),
        (good(ts="yesterday"), "ts", "whole number"),
        (good(product_id=True), "product_id", "whole number"),
        (good(product_id=0), "product_id", "at least 1"),
        (good(category="Electronics & more"), "category", "invalid format"),
        (good(id="has spaces"), "id", "invalid format"),
        (good(colour="red"), "colour", "unexpected field"),
        (good(ts=NOW_MS + 6 * 60 * 1000), "ts", "future"),
        (good(ts=NOW_MS - 8 * 86400 * 1000), "ts", "7 days old"),
    ],
)
def test_a_bad_event_names_its_index_and_field(event, field, message):
    with pytest.raises(BatchError) as caught:
        parse(batch(good(id="ok-0"), event))
    assert caught.value.index == 1
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[]", "invalid_batch"),
        (b'{"events": {}}', "invalid_batch"),
        (b'{"events": []}', "invalid_batch"),
        (batch(*[good(id=f"e{i}") for i in range(101)]), "batch_too_large"),
        (b" " * (64 * 1024 + 1), "body_too_large"),
    ],
)
def test_a_bad_batch_is_refused_whole(body, code):
    with pytest.raises(BatchError) as caught:
        parse(body)
    assert caught.value.code == code
    assert caught.value.as_json()["error"] == code
