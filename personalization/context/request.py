"""Build the request's Context from the request alone: device, geo, visitor-local time,
referrer and campaign, locale, and (from a cache only) weather.

Everything here is header parsing plus cached lookups; the only I/O is the weather cache read,
skipped entirely unless WEATHER_API_URL is configured, and memoized per process (see weather).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.http import HttpRequest

from tailored import conf
from tailored.core.context import daypart_at, daypart_starts, minute_of_day, weekday
from tailored.core.types import Context

from .device import device_facts
from .geo import GeoFacts, geo_from_request, zone_name_for
from .locale import locale_from_header, zone_name_from_language
from .place import place_of
from .referrer import referrer_facts
from .visitor_facts import site_facts, user_facts
from .weather import weather_for

MAX_USER_AGENT_CHARS = 512
MAX_ZONE_CHARS = 64


# What ZoneInfo raises for a name that is no zone: not found, malformed, or (read from the `tzdata`
# package, which sites without system zone files install) a folder of zones such as "America".
ZONE_ERRORS = (ZoneInfoNotFoundError, ValueError, OSError)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except ZONE_ERRORS:
        return None


def visitor_zone(request: HttpRequest, geo: GeoFacts | None = None) -> tuple[ZoneInfo, str | None]:
    """The visitor's timezone and its name, from the first source that knows it:

    1. geo, where the country or region has exactly one zone (geo.zone_name_for);
    2. the client-hint cookie tracker.js sets from the browser (TIMEZONE_COOKIE, "tl_tz"), which
       also answers for multi-timezone countries better than any guess would; tracker.js sets it
       only after consent (issue 15 item 4), so a first page never has it;
    3. the region of the preferred Accept-Language tag, where that country has one zone or one
       most of its people live on ("en-GB" -> Europe/London; "en-US" says nothing) and it does
       not contradict geo's country (locale.zone_name_from_language);
    4. the site's TIME_ZONE: local time is then the site's, and the name is None (unknown).
    """
    country = geo.country if geo is not None else None
    if geo is not None and (name := zone_name_for(country, geo.region)) and (zone := _zone(name)):
        return zone, name
    hinted = unquote(request.COOKIES.get(conf.get("TIMEZONE_COOKIE"), ""))[:MAX_ZONE_CHARS]
    if hinted and (zone := _zone(hinted)):
        return zone, zone.key
    accept_language = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    if (name := zone_name_from_language(accept_language, country)) and (zone := _zone(name)):
        return zone, name
    return _zone(settings.TIME_ZONE) or ZoneInfo("UTC"), None


@lru_cache(maxsize=64)
def _own_hosts(host: str, extra: tuple[str, ...]) -> frozenset[str]:
    names = {host, *extra}
    return frozenset(name.lower().removeprefix("www.") for name in names if name)


def own_hosts(request: HttpRequest) -> frozenset[str]:
    """This site's host names (without "www."): the request's host plus REFERRER_INTERNAL_HOSTS.
    Read from the header, not get_host(), which raises on hosts ALLOWED_HOSTS does not allow."""
    host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME") or ""
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    extra = conf.get_settings().get("REFERRER_INTERNAL_HOSTS", ())
    return _own_hosts(host.lower()[:255], tuple(extra))


@lru_cache(maxsize=8)
def _daypart_starts(starts: tuple[tuple[str, str], ...] | None) -> tuple[tuple[int, str], ...]:
    return daypart_starts(dict(starts) if starts is not None else None)


def configured_daypart(minute: int) -> str:
    """The daypart of a visitor-local minute of the day, with the site's DAYPARTS start times."""
    starts = conf.get("DAYPARTS")
    return daypart_at(minute, _daypart_starts(tuple(starts.items()) if starts else None))


def context_from_request(request: HttpRequest, now: float) -> Context:
    """Every context fact this request establishes; what it cannot establish stays None."""
    meta = request.META
    device = device_facts(meta.get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT_CHARS])
    geo = geo_from_request(request)
    zone, zone_name = visitor_zone(request, geo)
    local = datetime.fromtimestamp(now, UTC).astimezone(zone)
    hosts = own_hosts(request)
    referer, query_string = meta.get("HTTP_REFERER", ""), meta.get("QUERY_STRING", "")
    referrer = referrer_facts(referer, query_string, hosts)
    place = place_of(request.path, query_string, referer, hosts)
    weather = None
    if geo.country is not None and conf.get_settings().get("WEATHER_API_URL"):
        weather = weather_for(geo.region, geo.country)
    minute = minute_of_day(local)
    return Context(
        device=device.device,
        browser=device.browser,
        os=device.os,
        daypart=configured_daypart(minute),
        weekday=weekday(local),
        local_hour=local.hour,
        local_minute=minute,
        timezone=zone_name,
        country=geo.country,
        region=geo.region,
        city=geo.city,
        referrer_class=referrer.referrer_class,
        utm_source=referrer.utm_source,
        utm_medium=referrer.utm_medium,
        utm_campaign=referrer.utm_campaign,
        locale=locale_from_header(meta.get("HTTP_ACCEPT_LANGUAGE", "")),
        weather=weather.condition if weather else None,
        temperature_c=weather.temperature_c if weather else None,
        **place.context_fields(),
        **user_facts(request, now),
        site=site_facts(request),
    )
