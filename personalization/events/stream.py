"""The event stream contract between ingestion and the workers.

Every accepted batch is appended to the Redis Stream `tl:v1:events` as ONE entry (one XADD per
batch keeps ingestion fast) with two or three fields:

    v  the pseudonymous visitor id
    e  a JSON array of the batch's accepted events, each {"id", "type", "ts" (epoch seconds, float),
       "category", "item", "url", "attrs"}
    s  "analytics" when the visitor consented to analytics only (absent: personalization too)

Workers read entries through the consumer group `tl-workers`; an entry is acknowledged only once
its events are persisted, so delivery is at least once and persistence (unique per visitor and
event id) makes it exactly once in the database.

An event the worker cannot store (or an entry it cannot read at all) goes to the dead-letter
stream `tl:v1:events:dead` with the reason, never taking its neighbours with it: fields
v (visitor id, "" when unreadable), entry (the source entry id), e (the event's or entry's JSON)
and reason. Its length is the count the admin dashboard shows.

Workers delete an entry (XDEL) once it is persisted and acknowledged, so the stream holds only
what no worker has stored yet; every XADD also trims entries older than the retention period
(MINID), which bounds what a worker that is down for long can find, and so how long an erasure's
tombstone must last.

Shards (issue 19): with EVENT_STREAM_SHARDS = N > 1 the stream is N streams
`tl:v1:events:{<tag>}`, one per visitor shard (tailored.sharding: the tags spread the shards
over the masters of a Redis Cluster), and a batch goes to its visitor's shard, so one visitor's
events stay in order. Each shard has its own consumer group `tl-workers`; a worker reads every
shard. With N = 1 the stream is `tl:v1:events`, as before.

Erased visitors (tombstones): the sorted set `tl:v1:erased` maps a one-way digest of each erased
visitor id to the erasure time, for the retention period. A worker stores no event of an entry
appended before its visitor's erasure (the entry id is its append time): it deletes the entry and
adds the count to the erasure's audit row. Events appended later come from a new consent (a
logged-in user's id is the same after an erasure) and are stored as usual.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tailored import json_out
from tailored.core.types import Event
from tailored.sharding import shard_of, shard_tag

STREAM_KEY = "tl:v1:events"
CONSUMER_GROUP = "tl-workers"
DEAD_LETTER_KEY = "tl:v1:events:dead"
DEAD_LETTER_MAXLEN = 100_000  # approximate: the oldest dead letters go first
ERASED_KEY = "tl:v1:erased"
# Field s = "analytics": the visitor consented to analytics only (see is_analytics_only).
SCOPE_FIELD, ANALYTICS_ONLY = "s", "analytics"
# The worker's cart-abandonment schedule: visitor id -> when their cart counts as abandoned.
CART_WATCH_KEY = "tl:v1:cart-watch"


def stream_key(shard: int, shards: int) -> str:
    """Shard `shard`'s stream; `tl:v1:events` itself when there is one shard."""
    return STREAM_KEY if shards <= 1 else f"{STREAM_KEY}:{{{shard_tag(shard, shards)}}}"


def stream_keys(shards: int) -> list[str]:
    """Every shard's stream, in shard order."""
    return [stream_key(shard, shards) for shard in range(max(shards, 1))]


def visitor_stream(visitor_id: str, shards: int) -> str:
    """The stream a visitor's batches go to."""
    return stream_key(shard_of(visitor_id, shards), shards)


def erased_digest(visitor_id: str) -> str:
    """The tombstone's name for a visitor: a digest, so the set of erased visitors names nobody."""
    return hashlib.sha256(f"tailored-erased:{visitor_id}".encode()).hexdigest()[:32]


def min_id(now: float, keep_seconds: float) -> str:
    """The stream id before which entries are older than `keep_seconds` (MINID trimming)."""
    return str(max(0, int((now - keep_seconds) * 1000)))


def appended_at(entry_id: str) -> float:
    """When an entry was appended (epoch seconds): the first part of its id, in milliseconds."""
    return int(entry_id.split("-", 1)[0]) / 1000


def erasure_times(client: Any, visitor_ids: Iterable[str]) -> dict[str, float]:
    """The erased visitors among `visitor_ids`, with when each was erased (one ZMSCORE)."""
    ids = list(dict.fromkeys(visitor_ids))
    if not ids:
        return {}
    scores = client.zmscore(ERASED_KEY, [erased_digest(visitor_id) for visitor_id in ids])
    return {visitor_id: float(score) for visitor_id, score in zip(ids, scores, strict=True) if score is not None}


def dead_letter_count(client: Any) -> int:
    """How many dead letters wait (a Redis client; XLEN is O(1))."""
    return int(client.xlen(DEAD_LETTER_KEY))


def read_entry(fields: Mapping[str, str]) -> tuple[str, list[Any]]:
    """The visitor id and the raw event objects of one entry, each decoded on its own later so one
    bad event costs only itself; KeyError/ValueError when the entry as a whole is unreadable."""
    items = json.loads(fields["e"])
    if not isinstance(fields["v"], str) or not isinstance(items, list):
        raise ValueError("an entry is a visitor id and a JSON array of events")
    return fields["v"], items


def encode_batch(visitor_id: str, events: Sequence[Event], analytics_only: bool = False) -> dict[str, str | bytes]:
    fields = {"v": visitor_id, "e": json_out.dumps([event_to_json(e) for e in events])}
    if analytics_only:
        fields[SCOPE_FIELD] = ANALYTICS_ONLY
    return fields


def is_analytics_only(fields: Mapping[str, str]) -> bool:
    """Sent under analytics-only consent: stored for aggregate counts, never acted on for the
    visitor alone (no cart-abandonment webhook)."""
    return fields.get(SCOPE_FIELD) == ANALYTICS_ONLY


def decode_entry(fields: Mapping[str, str]) -> tuple[str, list[Event]]:
    return fields["v"], [event_from_json(item) for item in json.loads(fields["e"])]


def event_to_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "ts": event.ts,
        "category": event.category,
        "item": event.item,
        "url": event.url,
        "attrs": dict(event.attrs),
    }


def event_from_json(item: Mapping[str, Any]) -> Event:
    return Event(
        id=item["id"],
        type=item["type"],
        ts=float(item["ts"]),
        category=item.get("category"),
        item=item.get("item"),
        url=item.get("url"),
        attrs=item.get("attrs") or {},
    )
