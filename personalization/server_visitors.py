"""Server-to-server visitors (issue 6): a headless frontend rendering on its own server acts for
its visitor by sending, with every request,

- ``X-Tailored-Key``: an API key (``manage.py tailored_api_key create NAME``; stored hashed);
- ``X-Tailored-Visitor``: the visitor's pseudonymous id (32 lower-case hex characters), if any;
- ``X-Tailored-Context``: a JSON object of what the frontend knows about the visitor's request::

    {"user_agent": "Mozilla/5.0 ...", "country": "GB", "region": "GB-ENG", "city": "London",
     "local_time": "2025-06-02T08:30:00+01:00", "timezone": "Europe/London",
     "referrer": "https://www.google.com/", "url": "https://shop.example.com/?utm_campaign=x",
     "accept_language": "en-GB,en;q=0.8", "consent": {"analytics": true, "personalization": true},
     "gpc": false}

Every field is optional. The context goes through the same providers as a browser request
(device from the User-Agent, where an empty one is a script; referrer class and UTM from
referrer and url; the page's path and query parameters and the referring URL and host for rules;
locale; weather); country and region are taken as given, because the key is
trusted. Daypart and weekday come from local_time's wall clock, else from the current time in
the visitor's zone (geo, then timezone, then accept_language's region, then the site's
TIME_ZONE). The visitor id is used only when consent grants analytics or personalization (a
profile only with personalization).

``gpc`` is true when the visitor's browser sent ``Sec-GPC: 1`` or ``DNT: 1`` (or the server
forwards those headers as they are): it is honoured exactly like the browser's own header, by
the one consent rule (``tailored.services.consent_answer``): consent counts as declined, no id.

Without a valid key the three headers are ignored entirely. With a valid key, headers that
cannot be read (bad JSON, a field of the wrong type, an id that is not 32 hex characters) make
the GraphQL view answer 400 with the code INVALID_SERVER_CONTEXT; elsewhere they are ignored
and logged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.http import HttpRequest

from tailored import conf
from tailored.context.device import device_facts
from tailored.context.geo import city_name, country_code, region_code, zone_name_for
from tailored.context.locale import locale_from_header, zone_name_from_language
from tailored.context.place import place_of
from tailored.context.privacy_signals import browser_opts_out
from tailored.context.referrer import referrer_facts
from tailored.context.request import MAX_USER_AGENT_CHARS, ZONE_ERRORS, configured_daypart
from tailored.context.weather import weather_for
from tailored.core.context import minute_of_day, weekday
from tailored.core.types import Consent, Context
from tailored.events.json_body import JsonBodyError, parse_json

from .models import ApiKey

logger = logging.getLogger(__name__)

KEY_HEADER = "HTTP_X_TAILORED_KEY"
VISITOR_HEADER = "HTTP_X_TAILORED_VISITOR"
CONTEXT_HEADER = "HTTP_X_TAILORED_CONTEXT"
PREFIX_CHARS = 8
# 40 letters and digits (238 bits): selected whole by a double click, never read as a CLI option.
KEY_ALPHABET = string.ascii_letters + string.digits
KEY_CHARS = 40
MAX_KEY_CHARS = 128
MAX_CONTEXT_CHARS = 4096
MAX_CACHED_KEYS = 1024
VISITOR_ID = re.compile(r"^[0-9a-f]{32}\Z")
STRING_FIELDS = ("user_agent", "country", "region", "city", "local_time", "timezone", "referrer", "url", "accept_language")


# API keys ------------------------------------------------------------------------------------


def hash_key(raw: str) -> str:
    """What is stored of a key: the SHA-256 hex digest (keys are random, so no slow hash is needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(name: str) -> tuple[ApiKey, str]:
    """A new active key and its secret, which is returned here once and never stored."""
    raw = "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_CHARS))
    key = ApiKey.objects.create(name=name, prefix=raw[:PREFIX_CHARS], hashed_key=hash_key(raw))
    return key, raw


def revoke_api_keys(keys) -> int:
    """Deactivate the keys of a queryset; this process forgets them at once, others within
    API_KEY_CACHE_SECONDS."""
    count = keys.update(active=False)
    forget_api_keys()
    return count


# digest -> (valid until, key id or None when refused, last_used_at as epoch seconds)
_verified: dict[str, tuple[float, int | None, float]] = {}


def forget_api_keys() -> None:
    """Drop this process's cache of verified keys."""
    _verified.clear()


def verify_api_key(raw: str, now: float | None = None) -> int | None:
    """The id of the active key `raw`, or None. Compared in constant time; the answer (either
    way) is cached for API_KEY_CACHE_SECONDS, and last_used_at is written at most once every
    API_KEY_TOUCH_SECONDS."""
    if not raw or len(raw) > MAX_KEY_CHARS:
        return None
    now = time.time() if now is None else now
    digest = hash_key(raw)
    entry = _verified.get(digest)
    if entry is None or entry[0] <= now:
        entry = _load_key(raw[:PREFIX_CHARS], digest, now)
    expires, key_id, touched = entry
    if key_id is not None and now - touched >= conf.get("API_KEY_TOUCH_SECONDS"):
        _touch(key_id, now)
        _verified[digest] = (expires, key_id, now)
    return key_id


def _load_key(prefix: str, digest: str, now: float) -> tuple[float, int | None, float]:
    key_id, last_used = None, 0.0
    try:
        rows = list(ApiKey.objects.filter(prefix=prefix, active=True).values_list("pk", "hashed_key", "last_used_at"))
    except DatabaseError as error:  # no database, no server-to-server visitors; never a 500
        logger.warning("cannot verify an API key: %s", error)
        rows = []
    for pk, hashed, used_at in rows:
        if hmac.compare_digest(hashed, digest):
            key_id, last_used = pk, used_at.timestamp() if used_at else 0.0
    if len(_verified) >= MAX_CACHED_KEYS:
        _verified.clear()  # bounded: a stream of made-up keys cannot grow the cache
    entry = (now + conf.get("API_KEY_CACHE_SECONDS"), key_id, last_used)
    _verified[digest] = entry
    return entry


def _touch(key_id: int, now: float) -> None:
    # Conditional, so that across every process the row is written at most once a minute.
    cutoff = datetime.fromtimestamp(now - conf.get("API_KEY_TOUCH_SECONDS"), UTC)
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff)
    try:
        ApiKey.objects.filter(stale, pk=key_id).update(last_used_at=datetime.fromtimestamp(now, UTC))
    except DatabaseError as error:
        logger.warning("cannot record an API key's use: %s", error)


# Server-to-server visitors -------------------------------------------------------------------


class ServerHeadersError(ValueError):
    """X-Tailored-Visitor or X-Tailored-Context sent with a valid key, but unreadable."""


@dataclass(frozen=True, slots=True)
class ServerVisitor:
    """Who a trusted server acts for: the visitor id (None without consent to analytics or
    personalization, and under GPC / DNT), their consent, and their context facts but for the
    clock, which `context(now)` adds."""

    key_id: int
    visitor_id: str | None
    consent: Consent
    facts: Context
    zone: tzinfo
    local_time: datetime | None = None

    def context(self, now: float) -> Context:
        local = self.local_time or datetime.fromtimestamp(now, UTC).astimezone(self.zone)
        minute = minute_of_day(local)
        return dataclasses.replace(
            self.facts, daypart=configured_daypart(minute), weekday=weekday(local), local_hour=local.hour, local_minute=minute
        )


def server_visitor(request: HttpRequest) -> ServerVisitor | None:
    """The visitor the request's server acts for; None without a valid key (the X-Tailored-*
    headers are then ignored) or when the headers cannot be read (ignored and logged)."""
    if KEY_HEADER not in request.META:
        return None
    try:
        return read_server_visitor(request)
    except ServerHeadersError as error:
        logger.warning("ignoring the X-Tailored-* headers of a request: %s", error)
        return None


def read_server_visitor(request: HttpRequest) -> ServerVisitor | None:
    """Like `server_visitor`, but unreadable headers sent with a valid key raise
    ServerHeadersError. Read once per request."""
    cached = getattr(request, "_tailored_server_visitor", None)
    if cached is None:
        try:
            cached = (_read(request), None)
        except ServerHeadersError as error:
            cached = (None, str(error))
        request._tailored_server_visitor = cached
    visitor, problem = cached
    if problem is not None:
        raise ServerHeadersError(problem)
    return visitor


def _read(request: HttpRequest) -> ServerVisitor | None:
    meta = request.META
    key_id = verify_api_key(meta.get(KEY_HEADER, "").strip())
    if key_id is None:
        return None
    raw_id = meta.get(VISITOR_HEADER, "").strip()
    if raw_id and not VISITOR_ID.match(raw_id):
        raise ServerHeadersError("X-Tailored-Visitor must be 32 lower-case hexadecimal characters")
    data = _context_json(meta.get(CONTEXT_HEADER, ""))
    consent = _consent(data.get("consent"), _gpc(data) or browser_opts_out(meta))
    facts, zone, local_time = context_facts(data)
    visitor_id = raw_id if raw_id and consent.allows_events else None
    return ServerVisitor(key_id, visitor_id, consent, facts, zone, local_time)


def _context_json(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    if len(raw) > MAX_CONTEXT_CHARS:
        raise ServerHeadersError(f"X-Tailored-Context is longer than {MAX_CONTEXT_CHARS} characters")
    with contextlib.suppress(UnicodeError):
        raw = raw.encode("latin-1").decode("utf-8")  # WSGI hands header bytes over as latin-1
    try:  # the events API's parser: bounded depth and numbers, no NaN, no duplicate keys
        data = parse_json(raw)
    except JsonBodyError as error:
        raise ServerHeadersError(f"X-Tailored-Context is not valid JSON: {error.message}") from None
    if not isinstance(data, dict):
        raise ServerHeadersError("X-Tailored-Context must be a JSON object")
    return data


def _consent(value: Any, opted_out_by_browser: bool) -> Consent:
    if value is None:
        return Consent(opted_out_by_browser=opted_out_by_browser)
    categories = ("analytics", "personalization", "marketing")
    if not isinstance(value, dict) or not all(isinstance(value.get(k, False), bool) for k in categories):
        raise ServerHeadersError(
            'X-Tailored-Context: consent must be {"analytics": bool, "personalization": bool, "marketing": bool}'
        )
    return Consent(
        decided=True,
        analytics=value.get("analytics", False),
        personalization=value.get("personalization", False),
        marketing=value.get("marketing", False),
        opted_out_by_browser=opted_out_by_browser,
    )


def _gpc(data: dict[str, Any]) -> bool:
    value = data.get("gpc", False)
    if not isinstance(value, bool):
        raise ServerHeadersError("X-Tailored-Context: gpc must be true or false")
    return value


def context_facts(data: dict[str, Any]) -> tuple[Context, tzinfo, datetime | None]:
    """Context facts from X-Tailored-Context's fields (all but the clock), the visitor's zone,
    and their local time if it was given."""
    fields = {name: _string(data, name) for name in STRING_FIELDS}
    device = device_facts(fields["user_agent"][:MAX_USER_AGENT_CHARS])
    country = country_code(fields["country"])
    region = region_code(fields["region"], country)
    if country is None and region is not None:
        country = region[:2]  # a full ISO 3166-2 code names its country
    zone, zone_name = _zone(fields["timezone"], country, region, fields["accept_language"])
    local_time = _local_time(fields["local_time"])
    query, hosts = _query_and_hosts(fields["url"])
    referrer = referrer_facts(fields["referrer"], query, hosts)
    place = place_of(_path(fields["url"]), query, fields["referrer"], hosts)  # as for a browser (issue 18)
    weather = None
    if country is not None and conf.get_settings().get("WEATHER_API_URL"):
        weather = weather_for(region, country)
    facts = Context(
        device=device.device,
        browser=device.browser,
        os=device.os,
        timezone=zone_name,
        country=country,
        region=region,
        city=city_name(fields["city"], from_header=False),
        referrer_class=referrer.referrer_class,
        utm_source=referrer.utm_source,
        utm_medium=referrer.utm_medium,
        utm_campaign=referrer.utm_campaign,
        locale=locale_from_header(fields["accept_language"]),
        weather=weather.condition if weather else None,
        temperature_c=weather.temperature_c if weather else None,
        **place.context_fields(),
    )
    return facts, zone, local_time


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ServerHeadersError(f"X-Tailored-Context: {name} must be a string")
    return value


def _zone(name: str, country: str | None, region: str | None, accept_language: str) -> tuple[tzinfo, str | None]:
    # The order of a browser request (context.request.visitor_zone): geo where it names one
    # zone, then the visitor's own zone name, then the language's region, then the site's zone
    # (name unknown).
    if geo_zone := zone_name_for(country, region):
        with contextlib.suppress(*ZONE_ERRORS):
            return ZoneInfo(geo_zone), geo_zone
    if name:
        try:
            return ZoneInfo(name), name
        except ZONE_ERRORS:
            raise ServerHeadersError(f"X-Tailored-Context: timezone {name[:64]!r} is not an IANA zone name") from None
    if language_zone := zone_name_from_language(accept_language, country):
        with contextlib.suppress(*ZONE_ERRORS):
            return ZoneInfo(language_zone), language_zone
    return ZoneInfo(settings.TIME_ZONE), None


def _local_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        local = datetime.fromisoformat(value)
    except ValueError:
        local = None
    if local is None or local.utcoffset() is None:
        raise ServerHeadersError("X-Tailored-Context: local_time must be an ISO 8601 time with a UTC offset")
    return local


def _path(url: str) -> str:
    return urlsplit(url).path if url else ""  # url was checked by _query_and_hosts


def _query_and_hosts(url: str) -> tuple[str, frozenset[str]]:
    # The page's own host marks same-site referrers, like the request's host does for SSR.
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        raise ServerHeadersError("X-Tailored-Context: url is not a valid URL") from None
    names = (host, *conf.get_settings().get("REFERRER_INTERNAL_HOSTS", ()))
    return parts.query, frozenset(name.lower().removeprefix("www.") for name in names if name)
