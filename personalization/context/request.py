"""Build the request's Context: device, and daypart/weekday in the visitor's local time."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.http import HttpRequest

from personalization import conf
from personalization.core.context import daypart, weekday
from personalization.core.types import Context

from .device import device_class


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def visitor_zone(request: HttpRequest) -> ZoneInfo:
    """The visitor's timezone from the client-hint cookie tracker.js sets, else the site's."""
    hinted = unquote(request.COOKIES.get(conf.get("TIMEZONE_COOKIE"), ""))
    zone = _zone(hinted[:64]) if hinted else None
    return zone or _zone(settings.TIME_ZONE) or ZoneInfo("UTC")


def context_from_request(request: HttpRequest, now: float) -> Context:
    local = datetime.fromtimestamp(now, UTC).astimezone(visitor_zone(request))
    return Context(
        device=device_class(request.META.get("HTTP_USER_AGENT", "")[:512]),
        daypart=daypart(local.hour),
        weekday=weekday(local),
        local_hour=local.hour,
    )
