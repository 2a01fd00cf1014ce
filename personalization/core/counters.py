"""How a batch of events changes a profile: one delta, computed here once, that every store
applies the same way (the memory store in Python, the Redis store in one pipeline)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .types import Event, counter_keys, hour_bucket

RECENT_ITEMS = 50
RECENT_SEARCHES = 10
RECENT_SESSIONS = 50
CONTENT_PAGE_TYPES = frozenset({"article"})


@dataclass(frozen=True, slots=True)
class PriorState:
    """The little a delta needs to know about the profile before the batch (read in the same
    round trip as the dedup check)."""

    last_seen: float | None = None
    session_start: float | None = None


@dataclass(slots=True)
class SessionDelta:
    starts: list[float] = field(default_factory=list)  # sessions opened by this batch, oldest first
    # The newest session's first page view in this batch: its path and the parameters it kept
    # (attrs["keep"], the remembered ones tracker.js sends), for the visit's memory.
    landing: tuple[str | None, str | None] | None = None
    content_views: int = 0  # in the current session, after its start if it started in the batch
    converted: bool = False


@dataclass(slots=True)
class CartDelta:
    reset: bool = False  # a purchase emptied the cart; `changes` apply after it
    cleared: set[str] = field(default_factory=set)  # lines removed whole; `changes` apply after
    changes: Counter = field(default_factory=Counter)  # item -> quantity change
    updated_at: float | None = None


@dataclass(frozen=True, slots=True)
class ProfileDelta:
    first_ts: float | None
    last_ts: float | None
    buckets: Mapping[tuple[str, int], int]  # (counter, hour bucket) -> events
    event_counts: Mapping[str, int]
    category_views: Mapping[str, int]
    page_views: int
    session: SessionDelta
    cart: CartDelta
    purchases: int
    revenue: float
    last_purchase_at: float | None
    items: tuple[tuple[str, float], ...]  # viewed items, oldest first
    searches: tuple[str, ...]  # oldest first
    dwell: Mapping[str, tuple[float, int]]
    scroll: tuple[int, int]
    votes: Mapping[str, str]  # item -> "up" | "down", the last vote in the batch

    @property
    def is_empty(self) -> bool:
        return self.first_ts is None


def delta_for(
    events: Sequence[Event], prior: PriorState = PriorState(), session_gap: float = 1800.0, with_session: bool = True
) -> ProfileDelta:
    """Sum a batch (in time order) into the changes it makes to a profile. Without the session
    (`with_session=False`) `session` is empty: a store that picks it from `session_options`."""
    ordered = sorted(events, key=_time)
    counts = _counts(ordered)
    views = [e for e in ordered if e.type == "page_view"]
    purchases = [e for e in ordered if e.type == "purchase"]
    depths = [int(e.attrs["depth"]) for e in ordered if e.type == "scroll_depth"]
    return ProfileDelta(
        first_ts=ordered[0].ts if ordered else None,
        last_ts=ordered[-1].ts if ordered else None,
        buckets=counts.buckets,
        event_counts=counts.event_counts,
        category_views=counts.category_views,
        page_views=len(views),
        session=_sessions(ordered, prior, session_gap) if with_session else SessionDelta(),
        cart=_cart(ordered),
        purchases=len(purchases),
        revenue=sum(float(e.attrs.get("value", 0)) for e in purchases),
        last_purchase_at=purchases[-1].ts if purchases else None,
        items=tuple((e.item, e.ts) for e in views if e.item)[-RECENT_ITEMS:],
        searches=tuple(str(e.attrs["query"]) for e in ordered if e.type == "search")[-RECENT_SEARCHES:],
        dwell=counts.dwell,
        scroll=(sum(depths), len(depths)),
        votes={e.item: str(e.attrs["vote"]) for e in ordered if e.type == "recommendation_feedback" and e.item},
    )


def _time(event: Event) -> float:
    return event.ts


@dataclass(slots=True)
class _BatchCounts:
    buckets: dict[tuple[str, int], int] = field(default_factory=dict)
    event_counts: dict[str, int] = field(default_factory=dict)
    category_views: dict[str, int] = field(default_factory=dict)
    dwell: dict[str, tuple[float, int]] = field(default_factory=dict)


def _counts(ordered: Sequence[Event]) -> _BatchCounts:
    """The batch's counts in one pass with plain dictionaries (four `Counter`s over generators
    took about a tenth longer: 42 against 38 us for the delta of 20 events)."""
    counts = _BatchCounts()
    buckets, event_counts, category_views, dwell = counts.buckets, counts.event_counts, counts.category_views, counts.dwell
    for event in ordered:
        kind, category = event.type, event.category
        event_counts[kind] = event_counts.get(kind, 0) + 1
        hour = hour_bucket(event.ts)
        for key in _counters(event):
            bucket = (key, hour)
            buckets[bucket] = buckets.get(bucket, 0) + 1
        if kind == "page_view" and category:
            category_views[category] = category_views.get(category, 0) + 1
        # Section dwell (attrs["section"]) is part of the page's time, not another visit.
        elif kind == "dwell" and category and "section" not in event.attrs:
            seconds, count = dwell.get(category, (0.0, 0))
            dwell[category] = (seconds + float(event.attrs["seconds"]), count + 1)
    return counts


def _counters(event: Event) -> tuple[str, ...]:
    pages = event.attrs.get("pages")  # "4 12 19": the sections a page is in, then the page
    return counter_keys(event.type, event.category, event.item, tuple(pages.split()) if isinstance(pages, str) else ())


def _sessions(ordered: Sequence[Event], prior: PriorState, gap: float) -> SessionDelta:
    """A session starts at an event more than `gap` after the last one seen; a late event
    (older than the last seen) belongs to a session already counted."""
    delta = SessionDelta()
    last = prior.last_seen
    for event in ordered:
        if last is None or event.ts - last > gap:
            delta.starts.append(event.ts)
            delta.content_views, delta.converted, delta.landing = 0, False, None
        if event.type == "page_view" and delta.starts and delta.landing is None:
            delta.landing = (event.url, event.attrs.get("keep"))
        if event.type == "page_view" and event.attrs.get("page_type") in CONTENT_PAGE_TYPES:
            delta.content_views += 1
        if event.type in ("purchase", "add_to_cart"):
            delta.converted = True
        last = event.ts if last is None else max(last, event.ts)
    return delta


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """A batch's session changes for every last-seen time the profile may hold, so a store can
    write the batch in one round trip and let the last-seen time it reads pick the option.

    `candidates` are the times of the events that open a session when the profile's last event
    is old enough: the first event, and each event more than the gap after the one before it.
    With the profile's last event at `last`, candidate j still opens one iff `candidate - last >
    gap` (the same float test as `_sessions`); since they ascend, those that do not are a prefix.
    `options[k]` is the SessionDelta when exactly the first k do not (`options[0]`: no last seen)."""

    candidates: tuple[float, ...]
    options: tuple[SessionDelta, ...]

    def chosen(self, last_seen: float | None, gap: float) -> SessionDelta:
        """What `delta_for` computes for a profile last seen at `last_seen` (the reference the
        store's script mirrors)."""
        closed = 0 if last_seen is None else sum(1 for candidate in self.candidates if candidate - last_seen <= gap)
        return self.options[closed]


def session_options(events: Sequence[Event], gap: float = 1800.0) -> SessionOptions:
    """Every session outcome of a batch (see SessionOptions). Option k is computed by `_sessions`
    itself with the last seen time at candidate k: then candidates 1..k open nothing (each is at
    most the last seen time, or within the gap of it) and the later ones open a session, as for
    any last seen time between candidate k's and the next one's, less the gap."""
    ordered = sorted(events, key=_time)
    candidates = tuple(
        event.ts for i, event in enumerate(ordered) if i == 0 or event.ts - ordered[i - 1].ts > gap
    )
    options = (_sessions(ordered, PriorState(), gap),) + tuple(
        _sessions(ordered, PriorState(last_seen=candidate), gap) for candidate in candidates
    )
    return SessionOptions(candidates, options)


def _cart(ordered: Sequence[Event]) -> CartDelta:
    """Adds count their quantity (default 1); a removal with a quantity takes that many off, one
    without takes the whole line out (what a "Remove" button means); a purchase empties the cart."""
    delta = CartDelta()
    for event in ordered:
        if event.type == "purchase":
            delta.reset, delta.cleared, delta.changes, delta.updated_at = True, set(), Counter(), event.ts
            continue
        if event.type not in ("add_to_cart", "remove_from_cart") or not event.item:
            continue
        quantity = event.attrs.get("quantity")
        if event.type == "add_to_cart":
            delta.changes[event.item] += int(quantity or 1)
        elif quantity is None:
            delta.cleared.add(event.item)
            delta.changes.pop(event.item, None)
        else:
            delta.changes[event.item] -= int(quantity)
        delta.updated_at = event.ts
    return delta


def apply_cart(cart: Mapping[str, int], delta: CartDelta) -> dict[str, int]:
    """The cart after a delta: quantities never go below zero; empty lines disappear."""
    result = {} if delta.reset else dict(cart)
    for item in delta.cleared:
        result.pop(item, None)
    for item, change in delta.changes.items():
        result[item] = result.get(item, 0) + change
    return {item: quantity for item, quantity in result.items() if quantity > 0}
