"""The values every decision works on. All frozen: a request's facts never change under it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, overload

DEVICES = ("mobile", "tablet", "desktop", "bot")
DAYPARTS = ("morning", "afternoon", "evening", "night")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_EMPTY: Mapping = MappingProxyType({})
# A visit ends after this much inactivity (SESSION_GAP_SECONDS' default), for what the profile
# remembers about the visit; the store also starts afresh when a new session starts.
VISIT_GAP_SECONDS = 30 * 60


def _empty() -> Mapping:
    return _EMPTY


T = TypeVar("T")


class LazyTuple(Sequence[T]):
    """A tuple kept as the store's raw entries and parsed on first use (issue 21 item 7).

    A Redis profile brings 50 recent items and up to 50 session starts, each a timestamp to
    parse: about a third of building a Profile, on every request, while most pages' segments
    read neither. Its length is the raw entries' (no parse); anything else parses them once.
    It compares equal to the tuple it stands for, and copies and pickles as that tuple."""

    __slots__ = ("_raw", "_parse", "_items")

    def __init__(self, raw: Sequence[Any], parse: Callable[[Sequence[Any]], tuple[T, ...]]) -> None:
        self._raw, self._parse, self._items = raw, parse, None

    def as_tuple(self) -> tuple[T, ...]:
        items = self._items
        if items is None:  # two threads may both parse: the same answer, kept by the last
            items = self._items = self._parse(self._raw)
        return items

    def __len__(self) -> int:
        return len(self._raw)

    def __bool__(self) -> bool:
        return bool(self._raw)

    def __iter__(self) -> Iterator[T]:
        return iter(self.as_tuple())

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...
    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        return self.as_tuple()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyTuple):
            other = other.as_tuple()
        return self.as_tuple() == other if isinstance(other, tuple) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __repr__(self) -> str:
        return repr(self.as_tuple())

    def __reduce__(self) -> tuple[Any, ...]:
        return tuple, (self.as_tuple(),)


@dataclass(frozen=True, slots=True)
class Consent:
    """What the visitor agreed to. `decided` is False until they answer the banner.

    The categories (issue 15 item 6): necessary (the answer itself; always on, never asked),
    analytics (events are stored for aggregate counts and experiments, under a pseudonymous id,
    but no profile is built), personalization (a profile is built and used for targeting) and
    marketing (issue 20: triggers may reach the visitor outside the site, by email or a CRM)."""

    decided: bool = False
    analytics: bool = False
    personalization: bool = False
    marketing: bool = False
    # Sec-GPC / DNT: the browser asked not to be tracked; that overrides any stored answer.
    opted_out_by_browser: bool = False

    @property
    def allows_events(self) -> bool:
        """Events may be stored under an id: analytics or personalization was granted."""
        return (self.analytics or self.personalization) and not self.opted_out_by_browser

    @property
    def allows_profile(self) -> bool:
        """A profile may be built and used for targeting: personalization was granted."""
        return self.personalization and not self.opted_out_by_browser

    @property
    def allows_marketing(self) -> bool:
        """Triggers may send to destinations about this visitor: marketing was granted."""
        return self.marketing and not self.opted_out_by_browser


REFERRER_CLASSES = ("search", "social", "email", "direct", "campaign", "other")
WEATHER_CONDITIONS = ("clear", "clouds", "rain", "snow", "storm", "fog")


@dataclass(frozen=True, slots=True)
class Context:
    """Facts about this request only; never stored. A fact nobody could establish is None
    (geo is never guessed)."""

    device: str = "desktop"
    browser: str | None = None
    os: str | None = None
    daypart: str | None = None
    weekday: str | None = None
    local_hour: int | None = None
    timezone: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2, upper case
    region: str | None = None  # ISO 3166-2 subdivision code, e.g. "GB-ENG" or "US-CA"
    city: str | None = None
    referrer_class: str | None = None  # one of REFERRER_CLASSES
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    locale: str | None = None  # primary language tag, e.g. "en" or "de-CH"
    weather: str | None = None  # one of WEATHER_CONDITIONS
    temperature_c: float | None = None
    local_minute: int | None = None  # minutes after the visitor's local midnight, 0-1439
    path: str | None = None  # this page's URL path
    query: Mapping[str, str] = field(default_factory=_empty)  # first value of each parameter, bounded
    # Parameters kept for the visit ("remember for the visit"): from the profile with consent,
    # else from the same-site Referer's query (one step back); this request's own come first.
    session_query: Mapping[str, str] = field(default_factory=_empty)
    referrer: str | None = None  # the Referer URL, bounded
    referrer_host: str | None = None  # its host, lower case, without "www."
    # Where this visit started: this page when the visitor arrived from elsewhere, else what the
    # profile remembered (with consent); None when nobody knows.
    landing_page: str | None = None
    # The visitor's account, read only when an enabled rule asks (reading it opens the session).
    logged_in: bool = False
    is_staff: bool = False
    user_groups: tuple[str, ...] = ()
    account_age_days: float | None = None
    # Facts a site adds with register_tailored_rule_field, by name; only those the rules read.
    site: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class Window:
    """A count rules ask for: events matching `counter` (see `counter_keys`) in the last `hours`.

    Its hash is the dataclass's own, `hash((counter, hours))`, computed once: every request looks
    up each window the segments read in `Profile.windows`, and building that tuple on each lookup
    was most of the lookup's cost. Pickled as (counter, hours), so the hash is made afresh in the
    process that loads it (string hashes differ between processes)."""

    counter: str
    hours: int
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.counter, self.hours)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return Window, (self.counter, self.hours)


@dataclass(frozen=True, slots=True)
class Profile:
    """What the profile store holds about one visitor, as read at the start of a request.

    `windows` holds the windowed counts the enabled rules asked for (the store computes them
    server-side from hourly and daily buckets, so a request reads a few integers, not buckets).
    """

    visitor_id: str | None = None
    first_seen: float | None = None
    last_seen: float | None = None
    page_views: int = 0
    sessions: int = 0
    session_start: float | None = None
    session_starts: Sequence[float] = ()  # newest first (a tuple, or a LazyTuple from the store)
    session_content_views: int = 0
    session_converted: bool = False
    event_counts: Mapping[str, int] = field(default_factory=_empty)
    category_views: Mapping[str, int] = field(default_factory=_empty)
    cart: Mapping[str, int] = field(default_factory=_empty)
    cart_updated_at: float | None = None
    purchases: int = 0
    lifetime_value: float = 0.0
    last_purchase_at: float | None = None
    recent_items: Sequence[tuple[str, float]] = ()  # (item, ts), newest first (likewise)
    recent_searches: tuple[str, ...] = ()  # newest first
    dwell: Mapping[str, tuple[float, int]] = field(default_factory=_empty)  # category -> (seconds, n)
    scroll: tuple[int, int] = (0, 0)  # (sum of depths, count)
    down_votes: frozenset[str] = frozenset()
    last_device: str | None = None  # where the visitor last sent events from (for live counts)
    last_country: str | None = None
    persona: str | None = None
    scores: Mapping[str, float] = field(default_factory=_empty)  # model scores, e.g. churn_risk
    preferences: tuple[str, ...] = ()  # categories chosen in the onboarding survey
    assignments: Mapping[str, str] = field(default_factory=_empty)  # experiment key -> arm (sticky)
    windows: Mapping[Window, int] = field(default_factory=_empty)
    # The visit's first page and the parameters it arrived with that rules remember (issue 18).
    visit_landing: str | None = None
    visit_query: Mapping[str, str] = field(default_factory=_empty)
    # Declared CRM traits (issue 20): key -> text, number or true/false, as the site sent them.
    traits: Mapping[str, Any] = field(default_factory=_empty)

    def count_within(self, window: Window) -> int:
        return self.windows.get(window, 0)

    def sessions_within(self, seconds: float, now: float) -> int:
        since, n = now - seconds, 0  # a plain loop: every request's segments may ask
        for start in self.session_starts:
            if start > since:
                n += 1
        return n

    def in_visit(self, now: float) -> bool:
        """Whether the visit the profile remembers is still going on at `now`."""
        return self.last_seen is not None and now - self.last_seen <= VISIT_GAP_SECONDS

    def items_viewed_within(self, seconds: float, now: float) -> int:
        since, n = now - seconds, 0
        for _, ts in self.recent_items:
            if ts > since:
                n += 1
        return n

    @property
    def average_scroll_depth(self) -> float | None:
        total, count = self.scroll
        return total / count if count else None

    def average_dwell(self, category: str) -> float | None:
        seconds, count = self.dwell.get(category, (0.0, 0))
        return seconds / count if count else None


EMPTY_PROFILE = Profile()


@dataclass(frozen=True, slots=True)
class Event:
    """One validated behavioural event. `ts` is epoch seconds (the client's clock, bounded);
    `attrs` holds the type's own fields (quantity, value, query, depth, seconds, vote, ...)."""

    id: str
    type: str
    ts: float
    category: str | None = None
    item: str | None = None
    url: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class Visitor:
    """Everything a request knows about its visitor: the single input of every decision."""

    id: str | None
    consent: Consent
    context: Context
    profile: Profile
    segments: frozenset[str]
    resolved_at: float | None = None  # when the request learnt who they are (epoch seconds)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a batch's request knew about the visitor, kept with the profile: the device and
    country (so segment counts outside a request can evaluate them) and the segments matched
    (counted per day for segment sizes over time)."""

    device: str | None = None
    country: str | None = None
    segments: frozenset[str] = frozenset()


def hour_bucket(ts: float) -> int:
    """The epoch hour that contains `ts`."""
    return int(ts // 3600)


# Per-item windowed counts are kept for these types only: they are what item rules and
# recommendations ask about, and per-item buckets for every click would multiply the writes.
ITEM_COUNTED_EVENTS = frozenset({"page_view", "add_to_cart"})


# How a narrowed counter is named: `page_view|c:books`, `page_view|i:19`, `page_view|p:7`.
NARROWING_CODES = {"category": "c", "item": "i", "page": "p", "section": "s"}


def counter_key(event_type: str, narrowing: str | None = None, value: str | None = None) -> str:
    """The counter a rule reads: an event type, optionally narrowed (see NARROWING_CODES)."""
    return event_type if narrowing is None else f"{event_type}|{NARROWING_CODES[narrowing]}:{value}"


def counter_keys(
    event_type: str, category: str | None = None, item: str | None = None, pages: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The windowed counters an event increments: its type, its type in its category, (for
    ITEM_COUNTED_EVENTS) its type for its item, and for a page view with `pages` (the ids from
    the site's top section down to the page itself) the page and every section it is in."""
    keys = [event_type]
    if category:
        keys.append(f"{event_type}|c:{category}")
    if item and event_type in ITEM_COUNTED_EVENTS:
        keys.append(f"{event_type}|i:{item}")
    if pages and event_type == "page_view":
        keys.append(f"{event_type}|p:{pages[-1]}")
        keys.extend(f"{event_type}|s:{page}" for page in pages)
    return tuple(keys)
