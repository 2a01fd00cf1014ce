"""The event stream contract between ingestion and the workers.

Every accepted batch is appended to the Redis Stream `tl:v1:events` as ONE entry (one XADD per
batch keeps ingestion fast) with two fields:

    v  the pseudonymous visitor id
    e  a JSON array of the batch's accepted events, each {"id", "type", "ts" (epoch seconds, float),
       "category", "item", "url", "attrs"}

Workers read entries through the consumer group `tl-workers`; an entry is acknowledged only once
its events are persisted, so delivery is at least once and persistence (unique per visitor and
event id) makes it exactly once in the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tailored.core.types import Event

STREAM_KEY = "tl:v1:events"
CONSUMER_GROUP = "tl-workers"


def encode_batch(visitor_id: str, events: Sequence[Event]) -> dict[str, str]:
    return {"v": visitor_id, "e": json.dumps([event_to_json(e) for e in events], separators=(",", ":"))}


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
