"""Event schemas and batch validation.

One registry holds every event type's fields (other apps add types through the
`register_tailored_event_types` Wagtail hook). A batch that cannot be read at all (bad JSON, too
big, not a list) is refused whole with BatchError; otherwise each event is checked on its own and
the invalid ones are reported as Rejections (index, field, reason) while the valid ones go on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tailored.core.types import Event

from .json_body import JsonBodyError, parse_json

MAX_FUTURE_SECONDS = 5 * 60
MAX_AGE_SECONDS = 7 * 86400
# What the worker can store (the columns of tailored.models.Event): the API checks the same limits
# (stored_event_problem), so an accepted event is never dropped by the worker.
STORED_LENGTHS = {"visitor_id": 64, "id": 64, "type": 64, "category": 64, "item": 64, "url": 2048}
MAX_PRODUCT_ID = 2**63 - 1  # a 64-bit id: its digits fit the 64-character item column
MAX_TS_MS = 10**13 - 1  # epoch milliseconds before the year 2286 (a float second, a valid datetime)
MAX_WHOLE = 2**31 - 1  # coordinates, positions and other counts
EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
# A UTF-16 half without its partner (JSON's "\ud83d" alone, e.g. a string cut in an emoji): not
# encodable as UTF-8, so Redis and the database would refuse it; replaced by U+FFFD.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
CURRENCY = re.compile(r"^[A-Z]{3}\Z")
# Fields lifted out of `attrs` onto the Event itself: every layer reads them.
PRODUCT_FIELD, CATEGORY_FIELD, URL_FIELD = "product_id", "category", "url"
SCHEME_AND_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*|//[^/]*")


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
    "ts": FieldSpec(int, required=True, minimum=0, maximum=MAX_TS_MS),  # epoch milliseconds, as Date.now() gives
    URL_FIELD: FieldSpec(str, max_length=STORED_LENGTHS["url"]),
    CATEGORY_FIELD: FieldSpec(str, pattern=SLUG),
}
PRODUCT = FieldSpec(int, minimum=1, maximum=MAX_PRODUCT_ID)
PAGE_PATH = re.compile(r"^[1-9][0-9]{0,11}( [1-9][0-9]{0,11}){0,7}\Z")  # at most 8 page ids
REQUIRED_PRODUCT = FieldSpec(int, required=True, minimum=1, maximum=MAX_PRODUCT_ID)
LABEL = FieldSpec(str, max_length=128)
COORDINATE = FieldSpec(int, minimum=0, maximum=MAX_WHOLE)
POSITION = FieldSpec(float, minimum=0, maximum=MAX_WHOLE)

# The decision a block rendered (its data-tl-* attributes, or GraphQL's extensions.decisions):
# carried by impressions and by the first click inside the block (issue 17).
DECISION: dict[str, FieldSpec] = {
    "block": FieldSpec(str, pattern=EVENT_ID),
    # Keys as the block rendered them; a factorial arm reads "factor=level,factor=level".
    "variant": FieldSpec(str, max_length=64),
    "experiment": FieldSpec(str, max_length=64),
    "arm": FieldSpec(str, max_length=64),
    "page": FieldSpec(int, minimum=1, maximum=MAX_WHOLE),
}

EVENT_TYPES: dict[str, dict[str, FieldSpec]] = {}


# The types whose schema alone guarantees what the worker stores by (`stored_event_problem`):
# validating their events skips that second check, a sixth of a batch's validation.
STORABLE_BY_SCHEMA: set[str] = set()
REQUIRED_FIELDS: dict[str, frozenset[str]] = {}


def register_event_type(name: str, fields: Mapping[str, FieldSpec]) -> None:
    """Add an event type (or replace one): its own fields on top of the common ones."""
    if not SLUG.match(name):
        raise ValueError(f"event type names are slugs, got {name!r}")
    EVENT_TYPES[name] = {**COMMON_FIELDS, **fields}
    REQUIRED_FIELDS[name] = frozenset(field for field, spec in EVENT_TYPES[name].items() if spec.required)
    STORABLE_BY_SCHEMA.discard(name)
    if _schema_guarantees_storage(EVENT_TYPES[name]):
        STORABLE_BY_SCHEMA.add(name)


def _schema_guarantees_storage(fields: Mapping[str, FieldSpec]) -> bool:
    """Whether every event this schema accepts is one the worker can store: the fields lifted
    into columns keep the common specs (id and category patterns within 64 characters, the url's
    length, the ts range) and a product id is a 64-bit int. Every accepted string is checked for
    NUL and has its lone surrogates replaced by `validate_event` itself."""
    product = fields.get(PRODUCT_FIELD)
    return all(fields.get(name) is COMMON_FIELDS[name] for name in ("type", "id", "ts", URL_FIELD, CATEGORY_FIELD)) and (
        product is None or product.kind is int and product.maximum is not None and product.maximum <= MAX_PRODUCT_ID
    )


BUILT_IN_TYPES: dict[str, dict[str, FieldSpec]] = {
    "page_view": {
        PRODUCT_FIELD: PRODUCT,
        "page_type": FieldSpec(str, choices=("home", "category", "product", "article", "landing", "other")),
        # The page's id after the ids of the sections it is in, top first ("4 12 19"): what page
        # and section visit counts count (issue 18 item 3). Sent by tracker.js from the page.
        "pages": FieldSpec(str, pattern=PAGE_PATH),
        # The address's parameters the rules remember for the visit ("promo=spring"); the store
        # keeps only those (tailored.visit_memory).
        "keep": FieldSpec(str, max_length=500),
    },
    "click": {"target": FieldSpec(str, required=True, max_length=128), "x": COORDINATE, "y": COORDINATE, PRODUCT_FIELD: PRODUCT, **DECISION},
    # A personalized or experiment block half in view for at least a second, once per page view,
    # with the seconds it was seen (issue 17): the decision comes from the block's data-tl-*.
    "impression": {**DECISION, "block": FieldSpec(str, required=True, pattern=EVENT_ID), "seconds": FieldSpec(float, minimum=0, maximum=86400)},
    "scroll_depth": {"depth": FieldSpec(int, required=True, choices=(25, 50, 75, 100))},
    "dwell": {"seconds": FieldSpec(float, required=True, minimum=0, maximum=86400), "section": LABEL, PRODUCT_FIELD: PRODUCT},
    "add_to_cart": {PRODUCT_FIELD: REQUIRED_PRODUCT, "quantity": FieldSpec(int, minimum=1, maximum=999), "price": FieldSpec(float, minimum=0, maximum=1e9)},
    "remove_from_cart": {PRODUCT_FIELD: REQUIRED_PRODUCT, "quantity": FieldSpec(int, minimum=1, maximum=999)},
    "purchase": {
        "order_id": FieldSpec(str, required=True, pattern=EVENT_ID),
        "value": FieldSpec(float, required=True, minimum=0, maximum=1e9),
        "currency": FieldSpec(str, pattern=CURRENCY),
        "items": FieldSpec(list, max_length=100),
    },
    "search": {"query": FieldSpec(str, required=True, max_length=200)},
    "filter_change": {"filter": FieldSpec(str, required=True, max_length=64), "value": FieldSpec(str, required=True, max_length=128)},
    "video_play": {"video": FieldSpec(str, required=True, max_length=256), "position": POSITION},
    "video_pause": {"video": FieldSpec(str, required=True, max_length=256), "position": POSITION},
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
        payload = parse_json(body)
    except JsonBodyError as error:
        raise BatchError(error.code, error.message) from None
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
    if _plainly_valid(item, fields, kind):
        return _accepted(item, index, now, kind)
    return checked_in_order(item, fields, kind, index, now)


def checked_in_order(item: dict[str, Any], fields: Mapping[str, FieldSpec], kind: str, index: int, now: float) -> Event | Rejection:
    """Every check in its order (unknown fields, then lone surrogates mended, then the type's
    fields in the schema's order): the reason given for an invalid event is the same whatever
    order the client wrote its fields in. `validate_event` gives the same answers, faster."""
    for name in item:
        if name not in fields:
            return Rejection(index, name, f"unexpected field for {kind}")
    for value in item.values():
        # Only a non-ASCII string can hold a lone surrogate (str.isascii is a flag, not a scan).
        if value.__class__ is str and not value.isascii():
            item = {name: _normalised(value) for name, value in item.items()}
            break
    for name, spec in fields.items():
        value = item.get(name)
        if value is None:  # what field_problem says of a missing value, without the call
            if spec.required:
                return Rejection(index, name, "this field is required")
            continue
        problem = field_problem(value, spec)
        if problem:
            return Rejection(index, name, problem)
    return _accepted(item, index, now, kind)


def _plainly_valid(item: dict[str, Any], fields: Mapping[str, FieldSpec], kind: str) -> bool:
    """One pass over the fields the event has (most of a type's fields are optional and absent):
    True when every one is known and sound, no string needs mending and no required one is
    missing, the case of nearly every event tracker.js sends."""
    for name, value in item.items():
        spec = fields.get(name)
        if spec is None:
            return False
        if value is None:
            if spec.required:
                return False
        elif value.__class__ is str and not value.isascii() or field_problem(value, spec):
            return False
    return item.keys() >= REQUIRED_FIELDS[kind]


def _accepted(item: dict[str, Any], index: int, now: float, kind: str) -> Event | Rejection:
    """An event whose fields are valid, once its time and what the worker stores are checked."""
    ts = item["ts"] / 1000
    if ts > now + MAX_FUTURE_SECONDS:
        return Rejection(index, "ts", "the timestamp is more than 5 minutes in the future")
    if ts < now - MAX_AGE_SECONDS:
        return Rejection(index, "ts", "the timestamp is more than 7 days old")
    event = event_from_fields(item, ts)
    if kind in STORABLE_BY_SCHEMA:
        return event
    # A registered type may declare looser fields than the columns hold: the worker's own check
    # runs here too, so what is accepted is what gets stored.
    stored = stored_event_problem(event)
    if stored is None:
        return event
    field, reason = stored
    return Rejection(index, PRODUCT_FIELD if field == "item" else field, reason)  # the name the client sent


def _normalised(value: object) -> object:
    return LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def stored_event_problem(event: Event) -> tuple[str, str] | None:
    """(field, reason) when the worker could not store this event as it is; None when it can.
    The one check both the API (per event) and the worker (per stream event) run."""
    for name in ("id", "type", "category", "item", "url"):
        value = getattr(event, name)
        if value is None and name in ("category", "item", "url"):
            continue
        if not isinstance(value, str) or not value and name in ("id", "type"):
            return name, "must be a non-empty string"
        if len(value) > STORED_LENGTHS[name]:
            return name, f"must have at most {STORED_LENGTHS[name]} characters"
        if "\x00" in value or not value.isascii() and LONE_SURROGATE.search(value):
            return name, "must not contain NUL characters or unpaired surrogates"
    if not isinstance(event.ts, int | float) or not 0 <= event.ts <= MAX_TS_MS / 1000:
        return "ts", "must be an epoch time between 1970 and 2286"
    if not isinstance(event.attrs, Mapping):
        return "attrs", "must be an object"
    for name, value in event.attrs.items():
        if isinstance(value, str) and ("\x00" in value or not value.isascii() and LONE_SURROGATE.search(value)):
            return name, "must not contain NUL characters or unpaired surrogates"
    return None


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


def stored_url(url: str | None) -> str | None:
    """The page an event names, as its path. A query string or fragment may hold an email address,
    a reset token or a search (a headless client, or the site's own code, may send the whole URL):
    it is cut, as are a full URL's scheme and host. tracker.js sends the path alone, unchanged."""
    if url is None or not ("?" in url or "#" in url or "//" in url):
        return url
    path = url.split("#", 1)[0].split("?", 1)[0]
    origin = SCHEME_AND_HOST.match(path)
    return (path[origin.end():] or "/") if origin else path


def field_problem(value: object, spec: FieldSpec) -> str | None:
    if value is None:
        return "this field is required" if spec.required else None
    kind = spec.kind
    if kind is str and value.__class__ is str:  # the common cases first, without a call
        if "\x00" in value:  # PostgreSQL cannot store NUL in text
            return "must not contain NUL characters"
    elif not (kind is int and value.__class__ is int):
        problem = _kind_problem(value, kind)
        if problem:
            return problem
    if spec.choices and value not in spec.choices:
        return f"must be one of {', '.join(map(str, spec.choices))}"
    if spec.minimum is not None and value < spec.minimum:  # type: ignore[operator]
        return f"must be at least {_number(spec.minimum)}"
    if spec.maximum is not None and value > spec.maximum:  # type: ignore[operator]
        return f"must be at most {_number(spec.maximum)}"
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
        isinstance(value, list)
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_PRODUCT_ID for v in value)
    ):
        return "must be a list of product ids"
    return None


def _number(limit: float) -> str:
    # Exact for whole limits (2**63 - 1 is not 9.22337e+18), short for fractional ones.
    return str(int(limit)) if float(limit).is_integer() else f"{limit:g}"
