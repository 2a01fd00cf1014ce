"""The facts a rule can name: `context.*` (this request), `profile.*` (what the store holds, some
derived from the current time) and `score.<name>` (model scores). Each has a kind that decides
which operators apply and what values are valid."""

from __future__ import annotations

from collections.abc import Callable
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


@dataclass(frozen=True, slots=True)
class Field:
    kind: str
    read: Reader
    choices: tuple[str, ...] = ()
    help: str = ""


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
    "context.local_hour": _context("local_hour", kind=NUMBER),
    "context.country": _context("country", help="ISO 3166-1 alpha-2, e.g. GB"),
    "context.region": _context("region", help="ISO 3166-2, e.g. GB-ENG"),
    "context.city": _context("city"),
    "context.referrer_class": _context("referrer_class", REFERRER_CLASSES),
    "context.utm_source": _context("utm_source"),
    "context.utm_medium": _context("utm_medium"),
    "context.utm_campaign": _context("utm_campaign"),
    "context.locale": _context("locale"),
    "context.weather": _context("weather", WEATHER_CONDITIONS),
    "context.temperature_c": _context("temperature_c", kind=NUMBER),
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


def lookup(name: object) -> Field | None:
    """The field a rule names, including any `score.<name>` (a model score in [0, 1])."""
    if not isinstance(name, str):
        return None
    if name.startswith(SCORE_PREFIX) and len(name) > len(SCORE_PREFIX):
        score = name[len(SCORE_PREFIX):]
        return Field(NUMBER, lambda p, c, now: p.scores.get(score), help="a model score from 0 to 1")
    return FIELDS.get(name)
