"""Event schemas and batch validation.

One registry holds every event type's fields (other apps add types through the
`register_tailored_event_types` Wagtail hook). A batch that cannot be read at all (bad JSON, too
big, not a list) is refused whole with BatchError; otherwise each event is checked on its own and
the invalid ones are reported as Rejections (index, field, reason) while the valid ones go on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tailored.core.types import Event

MAX_FUTURE_SECONDS = 5 * 60
MAX_AGE_SECONDS = 7 * 86400
EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
# Fields lifted out of `attrs` onto the Event itself: every layer reads them.
PRODUCT_FIELD, CATEGORY_FIELD, URL_FIELD = "product_id", "category", "url"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: type  # str, int, float (any finite number) or list (of positive ints)
    required: bool = False
    pattern: re.Pattern[str] | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


class BatchError(ValueError):
    """A batch refused whole; `as_json()` is the 400 body."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


COMMON_FIELDS: dict[str, FieldSpec] = {
    "type": FieldSpec(str, required=True),
    "id": FieldSpec(str, required=True, pattern=EVENT_ID),
    "ts": FieldSpec(int, required=True, minimum=0),  # epoch milliseconds, as Date.now() gives
    URL_FIELD: FieldSpec(str, max_length=2048),
    CATEGORY_FIELD: FieldSpec(str, pattern=SLUG),
}
PRODUCT = FieldSpec(int, minimum=1)
REQUIRED_PRODUCT = FieldSpec(int, required=True, minimum=1)
LABEL = FieldSpec(str, max_length=128)

EVENT_TYPES: dict[str, dict[str, FieldSpec]] = {}


def register_event_type(name: str, fields: Mapping[str, FieldSpec]) -> None:
    """Add an event type (or replace one): its own fields on top of the common ones."""
    if not SLUG.match(name):
        raise ValueError(f"event type names are slugs, got {name!r}")
    EVENT_TYPES[name] = {**COMMON_FIELDS, **fields}


BUILT_IN_TYPES: dict[str, dict[str, FieldSpec]] = {
    "page_view": {PRODUCT_FIELD: PRODUCT, "page_type": FieldSpec(str, choices=("home", "category", "product", "article", "landing", "other"))},
    "click": {"target": FieldSpec(str, required=True, max_length=128), "x": FieldSpec(int, minimum=0), "y": FieldSpec(int, minimum=0), PRODUCT_FIELD: PRODUCT},
    "scroll_depth": {"depth": FieldSpec(int, required=True, choices=(25, 50, 75, 100))},
    "dwell": {"seconds": FieldSpec(float, required=True, minimum=0, maximum=86400), "section": LABEL, PRODUCT_FIELD: PRODUCT},
    "add_to_cart": {PRODUCT_FIELD: REQUIRED_PRODUCT, "quantity": FieldSpec(int, minimum=1, maximum=999), "price": FieldSpec(float, minimum=0)},
    "remove_from_cart": {PRODUCT_FIELD: REQUIRED_PRODUCT, "quantity": FieldSpec(int, minimum=1, maximum=999)},
    "purchase": {
        "order_id": FieldSpec(str, required=True, pattern=EVENT_ID),
        "value": FieldSpec(float, required=True, minimum=0, maximum=1e9),
        "currency": FieldSpec(str, pattern=CURRENCY),
        "items": FieldSpec(list, max_length=100),
    },
    "search": {"query": FieldSpec(str, required=True, max_length=200)},
    "filter_change": {"filter": FieldSpec(str, required=True, max_length=64), "value": FieldSpec(str, required=True, max_length=128)},
    "video_play": {"video": FieldSpec(str, required=True, max_length=256), "position": FieldSpec(float, minimum=0)},
    "video_pause": {"video": FieldSpec(str, required=True, max_length=256), "position": FieldSpec(float, minimum=0)},
    "form_submit": {"form": FieldSpec(str, required=True, max_length=128)},
    "recommendation_feedback": {PRODUCT_FIELD: REQUIRED_PRODUCT, "vote": FieldSpec(str, required=True, choices=("up", "down"))},
}
for _name, _fields in BUILT_IN_TYPES.items():
    register_event_type(_name, _fields)


def read_batch(body: bytes, max_events: int, max_bytes: int) -> list[Any]:
    """Decode `{"events": [...]}`; raises BatchError when the batch as a whole is unreadable."""
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
    return items


def validate_events(items: list[Any], now: float) -> tuple[list[Event], list[Rejection]]:
    """Check each event on its own: the valid ones, and a reason for each invalid one."""
    events: list[Event] = []
    rejections: list[Rejection] = []
    for index, item in enumerate(items):
        result = validate_event(item, index, now)
        (rejections if isinstance(result, Rejection) else events).append(result)
    return events, rejections


def validate_event(item: object, index: int, now: float) -> Event | Rejection:
    if not isinstance(item, dict):
        return Rejection(index, None, "an event must be an object")
    kind = item.get("type")
    fields = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if fields is None:
        return Rejection(index, "type", f"unknown event type {kind!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    for name in item:
        if name not in fields:
            return Rejection(index, name, f"unexpected field for {kind}")
    for name, spec in fields.items():
        problem = field_problem(item.get(name), spec)
        if problem:
            return Rejection(index, name, problem)
    ts = item["ts"] / 1000
    if ts > now + MAX_FUTURE_SECONDS:
        return Rejection(index, "ts", "the timestamp is more than 5 minutes in the future")
    if ts < now - MAX_AGE_SECONDS:
        return Rejection(index, "ts", "the timestamp is more than 7 days old")
    return event_from_fields(item, ts)


def event_from_fields(item: Mapping[str, Any], ts: float) -> Event:
    """Build the Event of an already validated event object."""
    lifted = ("type", "id", "ts", PRODUCT_FIELD, CATEGORY_FIELD, URL_FIELD)
    product = item.get(PRODUCT_FIELD)
    return Event(
        id=item["id"],
        type=item["type"],
        ts=ts,
        category=item.get(CATEGORY_FIELD),
        item=str(product) if product is not None else None,
        url=item.get(URL_FIELD),
        attrs={k: v for k, v in item.items() if k not in lifted},
    )


def field_problem(value: object, spec: FieldSpec) -> str | None:
    if value is None:
        return "this field is required" if spec.required else None
    problem = _kind_problem(value, spec.kind)
    if problem:
        return problem
    if spec.choices and value not in spec.choices:
        return f"must be one of {', '.join(map(str, spec.choices))}"
    if spec.minimum is not None and value < spec.minimum:  # type: ignore[operator]
        return f"must be at least {spec.minimum:g}"
    if spec.maximum is not None and value > spec.maximum:  # type: ignore[operator]
        return f"must be at most {spec.maximum:g}"
    if spec.max_length is not None and len(value) > spec.max_length:  # type: ignore[arg-type]
        return f"must have at most {spec.max_length} {'items' if spec.kind is list else 'characters'}"
    if spec.pattern is not None and not spec.pattern.match(value):  # type: ignore[arg-type]
        return f"has an invalid format (expected {spec.pattern.pattern})"
    return None


def _kind_problem(value: object, kind: type) -> str | None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind is int and not is_int:
        return f"must be a whole number, got {type(value).__name__}"
    if kind is float and not (is_int or (isinstance(value, float) and math.isfinite(value))):
        return f"must be a number, got {type(value).__name__}"
    if kind is str and not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if kind is str and "\x00" in value:  # PostgreSQL cannot store NUL in text
        return "must not contain NUL characters"
    if kind is list and not (
        isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return "must be a list of product ids"
    return None
