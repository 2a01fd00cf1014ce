"""JSON written to Redis with orjson (tailored.json_out), and with the standard library for what
orjson refuses: every batch the API accepts reaches the stream and the worker as it was sent."""

from __future__ import annotations

import json
import time

import pytest

from tailored import json_out
from tailored.core.types import Event
from tailored.events.stream import STREAM_KEY, decode_entry, read_entry
from tailored.profiles.redis import RedisProfileStore

VISITOR = "c" * 32
NOW = time.time()
BEYOND_64_BITS = 99_999_999_999_999_999_999  # 20 digits: the events API accepts it (MAX_INT_DIGITS)


@pytest.mark.parametrize("value", [
    [{"id": "e1", "ts": 1764000000.123, "attrs": {"price": 12.5, "tags": ["a", "é"]}}, None, True, 0],
    {"lone": "\ud800"},  # a client's escaped lone surrogate, which orjson will not write
    {"big": BEYOND_64_BITS},
    {1: "a key that is not a string"},
])
def test_what_is_written_reads_back_as_the_standard_library_reads_it(value):
    written = json_out.dumps(value)
    assert isinstance(written, bytes)
    assert json.loads(written) == json.loads(json.dumps(value))


def test_events_orjson_refuses_reach_the_stream_and_the_worker_unchanged(redis_client):
    # (A lone surrogate never gets here: the API mends it, and the store's script could not read it.)
    store = RedisProfileStore(redis_client, retention_seconds=90 * 86400)
    events = [
        Event(id="plain", type="page_view", ts=NOW - 2, category="books", item="7", attrs={"page_type": "product", "seconds": 1.5}),
        Event(id="big", type="click", ts=NOW - 1, attrs={"target": "cta", "x": BEYOND_64_BITS}),
        Event(id="accented", type="search", ts=NOW, attrs={"query": "tente à deux places"}),
    ]
    assert len(store.record(VISITOR, events, NOW).stored) == 3
    [(_stream, [(_entry_id, fields)])] = redis_client.xread({STREAM_KEY: "0"})
    visitor, decoded = decode_entry(fields)
    assert visitor == VISITOR and decoded == events
    assert read_entry(fields)[1][1]["attrs"]["x"] == BEYOND_64_BITS
