"""Event validation: unreadable batches are refused whole; each event is judged on its own."""

import json

import pytest

from tailored.events.schema import (
    EVENT_TYPES,
    BatchError,
    Rejection,
    read_batch,
    validate_events,
)

NOW = 1_764_000_000.0
NOW_MS = int(NOW * 1000)


def good(**overrides):
    return {"type": "page_view", "id": "evt-1", "ts": NOW_MS, "category": "electronics", "product_id": 12, **overrides}


def test_a_good_event_becomes_an_event():
    (event,), rejected = validate_events([good(page_type="product")], NOW)
    assert rejected == []
    assert (event.id, event.type, event.ts, event.category, event.item) == ("evt-1", "page_view", NOW, "electronics", "12")
    assert event.attrs == {"page_type": "product"}


@pytest.mark.parametrize(
    ("event", "field", "reason"),
    [
        (good(type="teleport"), "type", "unknown event type 'teleport'"),
        ({k: v for k, v in good().items() if k != "id"}, "id", "required"),
        (good(ts="yesterday"), "ts", "whole number"),
        (good(product_id=True), "product_id", "whole number"),
        (good(product_id=0), "product_id", "at least 1"),
        (good(category="Electronics & more"), "category", "invalid format"),
        (good(id="has spaces"), "id", "invalid format"),
        # "$" matches before a final newline: the patterns end at the text's end (\Z)
        (good(id="a" * 64 + "\n"), "id", "invalid format"),
        (good(category="books\n"), "category", "invalid format"),
        ({"type": "purchase", "id": "p", "ts": NOW_MS, "order_id": "o1", "value": 5, "currency": "EUR\n"}, "currency", "invalid format"),
        (good(colour="red"), "colour", "unexpected field"),
        (good(ts=NOW_MS + 6 * 60 * 1000), "ts", "future"),
        (good(ts=NOW_MS - 8 * 86400 * 1000), "ts", "7 days old"),
        ({"type": "scroll_depth", "id": "s", "ts": NOW_MS, "depth": 60}, "depth", "one of 25, 50, 75, 100"),
        ({"type": "dwell", "id": "d", "ts": NOW_MS, "seconds": float("nan")}, "seconds", "number"),
        ({"type": "purchase", "id": "p", "ts": NOW_MS, "order_id": "o1", "value": -1}, "value", "at least 0"),
        ({"type": "purchase", "id": "p", "ts": NOW_MS, "order_id": "o1", "value": 5, "items": ["x"]}, "items", "list of product ids"),
        ({"type": "recommendation_feedback", "id": "r", "ts": NOW_MS, "product_id": 3, "vote": "meh"}, "vote", "one of up, down"),
        ({"type": "search", "id": "q", "ts": NOW_MS, "query": "x" * 201}, "query", "at most 200"),
        ("not an object", None, "must be an object"),
        ({"type": "search", "id": "q", "ts": NOW_MS, "query": "te\x00nt"}, "query", "NUL"),
    ],
)
def test_a_bad_event_is_rejected_with_its_index_field_and_reason(event, field, reason):
    events, rejected = validate_events([good(id="ok-0"), event], NOW)
    assert [e.id for e in events] == ["ok-0"]
    assert rejected == [Rejection(1, field, rejected[0].reason)]
    assert reason in rejected[0].reason


def test_every_built_in_type_accepts_a_minimal_event():
    minimal = {
        "page_view": {}, "click": {"target": "hero"}, "scroll_depth": {"depth": 25}, "dwell": {"seconds": 3.5},
        "add_to_cart": {"product_id": 1}, "remove_from_cart": {"product_id": 1},
        "purchase": {"order_id": "o-1", "value": 10}, "search": {"query": "tent"},
        "filter_change": {"filter": "sort", "value": "price"}, "video_play": {"video": "intro"},
        "video_pause": {"video": "intro", "position": 3.2}, "form_submit": {"form": "newsletter"},
        "recommendation_feedback": {"product_id": 2, "vote": "up"},
    }
    assert set(minimal) <= set(EVENT_TYPES)
    items = [{"type": kind, "id": f"e{i}", "ts": NOW_MS, **fields} for i, (kind, fields) in enumerate(minimal.items())]
    events, rejected = validate_events(items, NOW)
    assert rejected == [] and len(events) == len(minimal)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[]", "invalid_batch"),
        (b'{"events": {}}', "invalid_batch"),
        (b'{"events": []}', "invalid_batch"),
        (json.dumps({"events": [good(id=f"e{i}") for i in range(101)]}).encode(), "batch_too_large"),
        (b" " * (64 * 1024 + 1), "body_too_large"),
    ],
)
def test_an_unreadable_batch_is_refused_whole(body, code):
    with pytest.raises(BatchError) as caught:
        read_batch(body, max_events=100, max_bytes=64 * 1024)
    assert caught.value.code == code
    assert caught.value.as_json()["error"] == code


def test_a_page_view_carries_its_page_path():
    (event,), rejected = validate_events([good(pages="4 12 19")], NOW)
    assert rejected == [] and event.attrs["pages"] == "4 12 19"
    for bad in ("4 x", "0 4", " 4", "1 2 3 4 5 6 7 8 9", 4):
        accepted, (rejection,) = validate_events([good(pages=bad)], NOW)
        assert accepted == [] and rejection.field == "pages"
