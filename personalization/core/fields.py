"""The facts a rule can name: `context.*` (this request; `context.query.<name>` any query
parameter), `visit.query.<name>` (a parameter remembered for the visit), `user.*` (the visitor's
account), `profile.*` (what the store holds, some derived from the current time),
`score.<name>` (model scores), `site.<name>` (facts a site registers) and `trait.<key>` (CRM
traits the site declares, issue 20). Each has a kind that decides which operators apply and what
values are valid."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .types import (
    DAYPARTS,
    DEVICES,
    REFERRER_CLASSES,
    WEATHER_CONDITIONS,
    WEEKDAYS,
    Context,
    Profile,
)

Reader = Callable[[Profile, Context, float], Any]
NUMBER, TEXT, FLAG, TEXTS = "number", "text", "flag", "texts"  # texts: a list of strings
TIME = "time"  # a time of day: "HH:MM" in rules, minutes after midnight when read
KINDS = (NUMBER, TEXT, FLAG, TEXTS, TIME)


@dataclass(frozen=True, slots=True)
class Field:
    kind: str
    read: Reader
    choices: tuple[str, ...] = ()
    help: str = ""
    # A cyclic quantity's period (24 for an hour of the day): `between` may then wrap around
    # (22 to 2 crosses midnight). Times of day (TIME) always may.
    period: int | None = None
    label: str = ""
    # The operators this field takes when narrower than its kind's (a trait's, by its kind).
    operators: tuple[str, ...] = ()


def _since(ts: float | None, now: float, unit: float) -> float | None:
    return None if ts is None else max(0.0, (now - ts) / unit)


def _context(name: str, choices: tuple[str, ...] = (), kind: str = TEXT, help: str = "") -> Field:
    return Field(kind, lambda p, c, now: getattr(c, name), choices, help)


FIELDS: dict[str, Field] = {
    "context.device": _context("device", DEVICES),
    "context.browser": _context("browser", help="ua-parser family, e.g. Chrome"),
    "context.os": _context("os", help="ua-parser family, e.g. iOS"),
    "context.daypart": _context("daypart", DAYPARTS, help="in the visitor's local time"),
    "context.weekday": _context("weekday", WEEKDAYS),
    "context.local_hour": Field(NUMBER, lambda p, c, now: c.local_hour, help="0-23 in the visitor's local time; between 22 and 2 crosses midnight", period=24),
    "context.local_time": _context("local_minute", kind=TIME, help="HH:MM in the visitor's local time; 22:00 to 02:00 crosses midnight"),
    "context.country": _context("country", help="ISO 3166-1 alpha-2, e.g. GB"),
    "context.region": _context("region", help="ISO 3166-2, e.g. GB-ENG"),
    "context.city": _context("city"),
    "context.referrer_class": _context("referrer_class", REFERRER_CLASSES),
    "context.referrer": _context("referrer", help="the full referring URL, e.g. https://news.example/story"),
    "context.referrer_host": _context("referrer_host", help="the referring site's host without www., e.g. news.example"),
    "context.path": _context("path", help="this page's path, e.g. /offers/"),
    "context.landing_page": Field(
        TEXT, lambda p, c, now: c.landing_page or (p.visit_landing if p.in_visit(now) else None),
        help="the path of the visit's first page (known on later pages with consent)",
    ),
    "context.utm_source": _context("utm_source"),
    "context.utm_medium": _context("utm_medium"),
    "context.utm_campaign": _context("utm_campaign"),
    "context.locale": _context("locale"),
    "context.weather": _context("weather", WEATHER_CONDITIONS),
    "context.temperature_c": _context("temperature_c", kind=NUMBER),
    "user.logged_in": Field(FLAG, lambda p, c, now: c.logged_in, help="signed in to the site"),
    "user.is_staff": Field(FLAG, lambda p, c, now: c.is_staff, help="a staff account"),
    "user.groups": Field(TEXTS, lambda p, c, now: c.user_groups, help="names of the account's groups"),
    "user.account_age_days": Field(NUMBER, lambda p, c, now: c.account_age_days, help="days since the account was created"),
    "profile.page_views": Field(NUMBER, lambda p, c, now: p.page_views),
    "profile.sessions": Field(NUMBER, lambda p, c, now: p.sessions),
    "profile.sessions_7d": Field(NUMBER, lambda p, c, now: p.sessions_within(7 * 86400, now), help="sessions in the last 7 days"),
    "profile.days_since_last_seen": Field(NUMBER, lambda p, c, now: _since(p.last_seen, now, 86400)),
    "profile.days_since_first_seen": Field(NUMBER, lambda p, c, now: _since(p.first_seen, now, 86400)),
    "profile.session_content_views": Field(NUMBER, lambda p, c, now: p.session_content_views, help="content pages in the current session"),
    "profile.session_converted": Field(FLAG, lambda p, c, now: p.session_converted),
    "profile.cart_items": Field(TEXTS, lambda p, c, now: tuple(p.cart), help="product ids in the cart"),
    "profile.cart_size": Field(NUMBER, lambda p, c, now: sum(p.cart.values())),
    "profile.minutes_since_cart_change": Field(NUMBER, lambda p, c, now: _since(p.cart_updated_at, now, 60)),
    "profile.purchases": Field(NUMBER, lambda p, c, now: p.purchases),
    "profile.lifetime_value": Field(NUMBER, lambda p, c, now: p.lifetime_value),
    "profile.days_since_purchase": Field(NUMBER, lambda p, c, now: _since(p.last_purchase_at, now, 86400)),
    "profile.average_scroll_depth": Field(NUMBER, lambda p, c, now: p.average_scroll_depth),
    "profile.recent_searches": Field(TEXTS, lambda p, c, now: p.recent_searches),
    "profile.viewed_items": Field(TEXTS, lambda p, c, now: tuple(item for item, _ in p.recent_items)),
    "profile.preferences": Field(TEXTS, lambda p, c, now: p.preferences, help="categories from the onboarding survey"),
    "profile.persona": Field(TEXT, lambda p, c, now: p.persona),
}
SCORE_PREFIX = "score."
QUERY_PREFIX = "context.query."
VISIT_QUERY_PREFIX = "visit.query."
SITE_PREFIX = "site."
PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_.\-\[\]]{1,40}\Z")
# Facts a site registers (tailored.rule_fields.register_tailored_rule_field), by bare name.
SITE_FIELDS: dict[str, Field] = {}


def site_field(name: str, kind: str, label: str = "", choices: tuple[str, ...] = (), help: str = "") -> Field:
    """Register a site fact `site.<name>`: its value comes from Context.site[name]."""
    if kind not in KINDS or not PARAMETER_NAME.match(name):
        raise ValueError(f"a site rule field needs a name of letters, digits and _.- and a kind of {', '.join(KINDS)}")
    field = Field(kind, lambda p, c, now: c.site.get(name), tuple(choices), help, label=label or name)
    SITE_FIELDS[name] = field
    return field


TRAIT_PREFIX = "trait."
TRAIT_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")  # a slug, as Trait.key stores it
# The CRM traits the site declares, by key (tailored.activation.traits keeps this in step with
# the Trait rows, as visitor_facts does SITE_FIELDS): a rule may name only these.
TRAIT_FIELDS: dict[str, Field] = {}
# A Trait's kind -> the rule kind its values compare as, and the operators editors get for it.
TRAIT_KINDS = {"text": TEXT, "number": NUMBER, "boolean": FLAG, "choice": TEXT}
TRAIT_OPERATORS = {
    "text": ("eq", "in", "contains", "present"),
    "number": ("eq", "gt", "gte", "lt", "lte", "between", "present"),
    "boolean": ("eq",),
    "choice": ("eq", "in", "present"),
}
# Called before a trait is looked up, so that a process sees traits declared in another one
# (the Django side sets it; it must be cheap and must not raise).
_trait_refresh: list[Callable[[], None]] = []


def set_trait_refresh(refresh: Callable[[], None] | None) -> None:
    """Install (or, with None, remove) what keeps TRAIT_FIELDS current before a lookup."""
    _trait_refresh[:] = [refresh] if refresh is not None else []


def trait_field(key: str, kind: str, label: str = "", choices: Sequence[str] = (), help: str = "") -> Field:
    """The rule field `trait.<key>` of a declared trait. It reads only values of the trait's kind:
    a value of another kind (stored before a declaration changed) reads as absent, never as an
    error in a comparison."""
    if kind not in TRAIT_KINDS or not TRAIT_KEY.match(key):
        raise ValueError(f"a trait needs a key of lower-case letters, digits, _ and - and a kind of {', '.join(TRAIT_KINDS)}")
    accepts = _TRAIT_VALUE_TESTS[kind]

    def read(p: Profile, c: Context, now: float) -> Any:
        value = p.traits.get(key)
        return value if value is not None and accepts(value) else None

    offered = tuple(choices) if kind == "choice" else ()
    return Field(TRAIT_KINDS[kind], read, offered, help, label=label or key, operators=TRAIT_OPERATORS[kind])


def declare_traits(declarations: Iterable[tuple[str, str, str, Sequence[str]]]) -> None:
    """Replace the declared traits with (key, kind, label, choices) of each."""
    fields = {key: trait_field(key, kind, label, choices) for key, kind, label, choices in declarations}
    TRAIT_FIELDS.clear()
    TRAIT_FIELDS.update(fields)


def _is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_TRAIT_VALUE_TESTS: dict[str, Callable[[object], bool]] = {
    "text": lambda v: isinstance(v, str),
    "choice": lambda v: isinstance(v, str),
    "number": _is_finite_number,
    "boolean": lambda v: isinstance(v, bool),
}


def lookup(name: object) -> Field | None:
    """The field a rule names, including the open families: `score.<name>` (a model score in
    [0, 1]), `context.query.<parameter>`, `visit.query.<parameter>`, `site.<name>` and
    `trait.<key>` (declared traits only)."""
    if not isinstance(name, str):
        return None
    if name.startswith(TRAIT_PREFIX):
        for refresh in _trait_refresh:
            refresh()
        return TRAIT_FIELDS.get(name[len(TRAIT_PREFIX):])
    if name.startswith(SCORE_PREFIX) and len(name) > len(SCORE_PREFIX):
        score = name[len(SCORE_PREFIX):]
        return Field(NUMBER, lambda p, c, now: p.scores.get(score), help="a model score from 0 to 1")
    for prefix, source in ((QUERY_PREFIX, "query"), (VISIT_QUERY_PREFIX, "session_query")):
        if name.startswith(prefix):
            return _parameter(name[len(prefix):], source)
    if name.startswith(SITE_PREFIX):
        return SITE_FIELDS.get(name[len(SITE_PREFIX):])
    return FIELDS.get(name)


def _parameter(parameter: str, source: str) -> Field | None:
    if not PARAMETER_NAME.match(parameter):
        return None
    if source == "query":
        return Field(TEXT, lambda p, c, now: c.query.get(parameter), help="this request's query parameter")
    # A parameter remembered for the visit: this request's own value, else the previous page's
    # (its same-site Referer), else the one the visit landed with (the profile, with consent).
    def remembered(p: Profile, c: Context, now: float) -> str | None:
        found = c.query.get(parameter) or c.session_query.get(parameter)
        return found or (p.visit_query.get(parameter) if p.in_visit(now) else None)

    return Field(TEXT, remembered, help="a query parameter seen earlier in the visit")
