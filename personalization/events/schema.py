"""Event schemas and batch validation. One registry holds every event type's fields; a batch is
accepted whole or rejected with the first offending index and field (nothing is stored)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from personalization.core.types import Event

MAX_FUTURE_SECONDS = 5 * 60
MAX_AGE_SECONDS = 7 * 86400
EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: type
    required: bool = False
    pattern: re.Pattern[str] | None = None
    max_length: int | None = None
    minimum: int | None = None


# Fields every event carries.
COMMON_FIELDS: dict[str, FieldSpec] = {
    "type": FieldSpec(str, required=True),
    "id": FieldSpec(str, required=True, pattern=EVENT_ID),
    "ts": FieldSpec(int, required=True, minimum=0),  # epoch milliseconds, as Date.now() gives
    "url": FieldSpec(str, max_length=2048),
}

EVENT_TYPES: dict[str, dict[str, FieldSpec]] = {}


def register_event_type(name: str, fields: Mapping[str, FieldSpec]) -> None:
    """Add an event type (or replace one) with its own fields on top of the common ones."""
    EVENT_TYPES[name] = {**COMMON_FIELDS, **fields}


register_event_type(
    "page_view",
    {
        "product_id": FieldSpec(int, minimum=1),
        "category": FieldSpec(str, pattern=SLUG),
    },
)


class BatchError(ValueError):
    """Why a batch was refused; `as_json()` is the 400 body."""

    def __init__(self, code: str, message: str, index: int | None = None, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.index, self.field = code, message, index, field

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        if self.field is not None:
            body["field"] = self.field
        return body


def parse_batch(body: bytes, now: float, max_events: int, max_bytes: int) -> list[Event]:
    """Decode and validate a JSON batch `{"events": [...]}`; raises BatchError on the first problem."""
    if len(body) > max_bytes:
        raise BatchError("body_too_large", f"the body is {len(body)} bytes; the limit is {max_bytes}")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchError("malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise BatchError("invalid_batch", 'expected an object {"events": [...]}', field="events")
    items = payload["events"]
    if not items:
        raise BatchError("invalid_batch", "the batch has no events", field="events")
    if len(items) > max_events:
        raise BatchError("batch_too_large", f"the batch has {len(items)} events; the limit is {max_events}", field="events")
    return [validate_event(item, index, now) for index, item in enumerate(items)]


def validate_event(item: object, index: int, now: float) -> Event:
    if not isinstance(item, dict):
        raise BatchError("invalid_event", "an event must be an object", index=index)
    fields = EVENT_TYPES.get(item.get("type"))  # type: ignore[arg-type]
    if fields is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise BatchError("invalid_event", f"unknown event type {item.get('type')!r}; known: {known}", index, "type")
    for name in item:
        if name not in fields:
            raise BatchError("invalid_event", f"unexpected field for {item['type']}", index, name)
    for name, spec in fields.items():
        problem = _field_problem(item.get(name), spec)
        if problem:
            raise BatchError("invalid_event", problem, index, name)
    ts = item["ts"] / 1000
    if ts > now + MAX_FUTURE_SECONDS:
        raise BatchError("invalid_event", "the timestamp is more than 5 minutes in the future", index, "ts")
    if ts < now - MAX_AGE_SECONDS:
        raise BatchError("invalid_event", "the timestamp is more than 7 days old", index, "ts")
    product_id = item.get("product_id")
    return Event(
        id=item["id"],
        type=item["type"],
        ts=ts,
        category=item.get("category"),
        item=str(product_id) if product_id is not None else None,
        url=item.get("url"),
    )


def _field_problem(value: object, spec: FieldSpec) -> str | None:
    if value is None:
        return "this field is required" if spec.required else None
    if spec.kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        return f"must be a whole number, got {type(value).__name__}"
    if spec.kind is str and not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if spec.minimum is not None and value < spec.minimum:  # type: ignore[operator]
        return f"must be at least {spec.minimum}"
    if spec.max_length is not None and len(value) > spec.max_length:  # type: ignore[arg-type]
        return f"must be at most {spec.max_length} characters"
    if spec.pattern is not None and not spec.pattern.match(value):  # type: ignore[arg-type]
        return f"has an invalid format (expected {spec.pattern.pattern})"
    return None
