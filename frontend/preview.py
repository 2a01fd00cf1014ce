"""Preview as an audience (issue 5): in Wagtail's page preview, an editor sees the page exactly as
a visitor with the segments and context they pick would see it.

How it works:

1. An audience is a short query string: ``segments=a,b&device=mobile&daypart=morning&weekday=sat
   &country=GB-ENG&weather=rain&campaign=spring-sale``. `parse_audience` validates every value
   (unknown ones are dropped; nothing is trusted).
2. `audience_visitor` builds a synthetic core `Visitor` from it: the picked segments plus every
   segment whose rule holds for that context with an empty profile (a mobile morning audience is
   also in "Mobile visitors"), no id, nothing stored. A daypart or weekday left blank means now
   (the editor's own local time); any other blank fact is unknown, as for a real visitor.
3. The page's `serve_preview` (cms.models.AudiencePreviewMixin) calls `apply_audience`, which sets
   `request._tailored_visitor` before rendering, so `services.resolve_visitor` returns the synthetic
   visitor to every block: PersonalizedBlock, carousels and messages all follow it.
4. The audience comes from the preview mode when it is an audience string (the mode menu offers
   one per segment), else from the `tl_preview_audience` cookie that the picker above the preview
   sets (path /admin/, so public pages never even receive it), else the editor previews as
   themselves.

Only for editors (`services.is_editor`), and only in `serve_preview`: public pages never read the
mode or the cookie.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from django.http import HttpRequest

from tailored.context import context_from_request
from tailored.context.referrer import utm_value
from tailored.core.segments import matching_segments
from tailored.core.types import (
    DAYPARTS,
    DEVICES,
    EMPTY_PROFILE,
    WEATHER_CONDITIONS,
    WEEKDAYS,
    Consent,
    Context,
    Visitor,
)
from tailored.models import Segment
from tailored.segments import segment_cache
from tailored.services import is_editor

AUDIENCE_COOKIE = "tl_preview_audience"
PREVIEW_DEVICES = tuple(d for d in DEVICES if d != "bot")
COUNTRY = re.compile(r"^[A-Z]{2}$")
REGION = re.compile(r"^([A-Z]{2})-[A-Z0-9]{1,3}$")
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Audience:
    """Who the editor previews as. None means "unknown" (daypart and weekday: "now")."""

    segments: frozenset[str] = frozenset()
    device: str = "desktop"
    daypart: str | None = None
    weekday: str | None = None
    country: str | None = None
    region: str | None = None
    weather: str | None = None
    campaign: str | None = None

    def as_query(self) -> str:
        """The audience as a preview mode / cookie value (round-trips through parse_audience)."""
        pairs = [("segments", ",".join(sorted(self.segments)))] if self.segments else []
        pairs.append(("device", self.device))
        for name in ("daypart", "weekday", "weather", "campaign"):
            if getattr(self, name):
                pairs.append((name, getattr(self, name)))
        if self.region or self.country:
            pairs.append(("country", self.region or self.country))
        return urlencode(pairs)

    def describe(self, names: dict[str, str]) -> str:
        """In words, for the picker: "Electronics fans · mobile · morning · GB"."""
        parts = [" or ".join(names.get(s, s) for s in sorted(self.segments)) or "no segment", self.device]
        parts += [v for v in (self.daypart, self.weekday, self.region or self.country, self.weather) if v]
        if self.campaign:
            parts.append(f"campaign {self.campaign}")
        return " · ".join(parts)


def parse_audience(query: str, known_segments: Collection[str] | None = None) -> Audience:
    """An Audience from a query string; values that are not valid are dropped."""
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query[:MAX_QUERY_CHARS], keep_blank_values=False):
        params.setdefault(key.removeprefix("tl_"), []).append(value)

    def one(name: str, allowed: Collection[str]) -> str | None:
        value = (params.get(name) or [""])[-1].strip().lower()
        return value if value in allowed else None

    segments = {s.strip() for raw in params.get("segments", ()) for s in raw.split(",") if s.strip()}
    if known_segments is not None:
        segments &= set(known_segments)
    country, region = _place((params.get("country") or [""])[-1])
    campaign = (params.get("campaign") or [""])[-1]
    return Audience(
        segments=frozenset(segments),
        device=one("device", PREVIEW_DEVICES) or "desktop",
        daypart=one("daypart", DAYPARTS),
        weekday=one("weekday", WEEKDAYS),
        country=country,
        region=region,
        weather=one("weather", WEATHER_CONDITIONS),
        campaign=utm_value(campaign) if campaign else None,
    )


def _place(raw: str) -> tuple[str | None, str | None]:
    code = raw.strip().upper()
    if COUNTRY.match(code):
        return code, None
    if match := REGION.match(code):
        return match[1], code
    return None, None


def audience_visitor(audience: Audience, now: float | None = None, daypart: str | None = None, weekday: str | None = None) -> Visitor:
    """The synthetic visitor of an audience: its context, and the picked segments plus every
    segment whose rule holds for that context and an empty profile. `daypart` and `weekday`
    fill the audience's blanks (the caller passes the current ones)."""
    now = time.time() if now is None else now
    context = Context(
        device=audience.device,
        daypart=audience.daypart or daypart,
        weekday=audience.weekday or weekday,
        country=audience.country,
        region=audience.region,
        referrer_class="campaign" if audience.campaign else None,
        utm_campaign=audience.campaign,
        weather=audience.weather,
    )
    segment_set, _ = segment_cache.current()
    derived = matching_segments(segment_set.definitions, EMPTY_PROFILE, context, now)
    consent = Consent(decided=True, personalization=True)
    return Visitor(id=None, consent=consent, context=context, profile=EMPTY_PROFILE, segments=audience.segments | derived)


def preview_modes() -> list[tuple[str, str]]:
    """Wagtail preview modes: the picked audience (default), a new visitor, and one per segment."""
    modes = [("", "Audience picked in the preview (or you)"), ("device=desktop", "A new visitor with no segment")]
    modes += [
        (urlencode({"segments": slug}), f"As {name}")
        for slug, name in Segment.objects.filter(enabled=True).order_by("name").values_list("slug", "name")
    ]
    return modes


def apply_audience(request: HttpRequest, mode_name: str, now: float | None = None) -> dict[str, Any] | None:
    """For an editor's preview request: set the audience's visitor on the request (so every block
    renders for it) and return what the picker shows. None (and nothing set) for anyone else."""
    if not is_editor(request):
        return None
    now = time.time() if now is None else now
    names = dict(Segment.objects.filter(enabled=True).order_by("name").values_list("slug", "name"))
    if mode_name and "=" in mode_name:
        source, query = "mode", mode_name
    elif cookie := unquote(request.COOKIES.get(AUDIENCE_COOKIE, "")):
        source, query = "picker", cookie
    else:
        source, query = "yourself", None
    audience = parse_audience(query, names) if query is not None else None
    if audience is not None:
        own = context_from_request(request, now)
        request._tailored_visitor = audience_visitor(audience, now, own.daypart, own.weekday)
    return {
        "source": source,
        "audience": audience,
        "summary": audience.describe(names) if audience else "yourself (your own cookies and device)",
        "segments": list(names.items()),
        "devices": PREVIEW_DEVICES,
        "dayparts": DAYPARTS,
        "weekdays": WEEKDAYS,
        "weather": WEATHER_CONDITIONS,
        "cookie": AUDIENCE_COOKIE,
    }
