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
5. The device (issue 16 item 4): the one the editor picked, else the preview pane's. Wagtail's
   size buttons set the pane's width (mobile 375 px, tablet 768, desktop 1280); the page editor's
   script (static tailored/preview_size.js, added by wagtail_hooks) and the picker's own script
   set the `tl_preview_device` cookie (path /admin/) to the device of that width (`device_for_width`:
   mobile under 600 px, tablet under 1024, else desktop), and the picker reloads the preview once
   when the page was rendered for another one. An audience that names no device, and the editor
   previewing as themselves, get that device; the picker's summary says which and why ("mobile,
   from the preview's width").

Only for editors (`services.is_editor`), and only in `serve_preview`: public pages never read the
mode or the cookie.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
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
from tailored.services import is_editor, resolve_visitor

AUDIENCE_COOKIE = "tl_preview_audience"
DEVICE_COOKIE = "tl_preview_device"  # the preview pane's device, from its width
# The widths where Wagtail's preview sizes (375, 768, 1280 px) change device; the scripts agree.
MOBILE_BELOW, TABLET_BELOW = 600, 1024
PREVIEW_DEVICES = tuple(d for d in DEVICES if d != "bot")
COUNTRY = re.compile(r"^[A-Z]{2}\Z")
REGION = re.compile(r"^([A-Z]{2})-[A-Z0-9]{1,3}\Z")
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Audience:
    """Who the editor previews as. None means "unknown" (daypart and weekday: "now")."""

    segments: frozenset[str] = frozenset()
    device: str | None = None  # None: the preview pane's device (else desktop)
    daypart: str | None = None
    weekday: str | None = None
    country: str | None = None
    region: str | None = None
    weather: str | None = None
    campaign: str | None = None

    def as_query(self) -> str:
        """The audience as a preview mode / cookie value (round-trips through parse_audience)."""
        pairs = [("segments", ",".join(sorted(self.segments)))] if self.segments else []
        for name in ("device", "daypart", "weekday", "weather", "campaign"):
            if getattr(self, name):
                pairs.append((name, getattr(self, name)))
        if self.region or self.country:
            pairs.append(("country", self.region or self.country))
        return urlencode(pairs)

    def describe(self, names: dict[str, str], device: str | None = None) -> str:
        """In words, for the picker: "Electronics fans · mobile, picked · morning · GB"; `device`
        says which device and why when the audience names none."""
        parts = [" or ".join(names.get(s, s) for s in sorted(self.segments)) or "no segment", device or self.device or "desktop"]
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
        device=one("device", PREVIEW_DEVICES),
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


def device_for_width(width: float) -> str:
    """The device of a preview pane `width` CSS pixels wide (as the picker's script decides)."""
    return "mobile" if width < MOBILE_BELOW else "tablet" if width < TABLET_BELOW else "desktop"


def audience_visitor(
    audience: Audience, now: float | None = None, daypart: str | None = None, weekday: str | None = None,
    device: str | None = None,
) -> Visitor:
    """The synthetic visitor of an audience: its context, and the picked segments plus every
    segment whose rule holds for that context and an empty profile. `daypart`, `weekday` and
    `device` fill the audience's blanks (the caller passes the current ones; desktop without)."""
    now = time.time() if now is None else now
    context = Context(
        device=audience.device or device or "desktop",
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
    modes = [("", "Audience picked in the preview (or you)"), ("segments=", "A new visitor with no segment")]
    modes += [
        (urlencode({"segments": slug}), f"As {name}")
        for slug, name in Segment.objects.filter(enabled=True).order_by("name").values_list("slug", "name")
    ]
    return modes


def pane_device(request: HttpRequest) -> str | None:
    """The preview pane's device, from the cookie its width set; None before any script ran."""
    device = request.COOKIES.get(DEVICE_COOKIE, "")
    return device if device in PREVIEW_DEVICES else None


def chosen_device(audience: Audience | None, source: str, pane: str | None) -> tuple[str, str]:
    """The device the preview renders for, and why, in words."""
    if audience is not None and audience.device:
        return audience.device, "set by the preview mode" if source == "mode" else "picked"
    if pane:
        return pane, "from the preview's width"
    return "desktop", "until the preview's width is known"


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
    pane = pane_device(request)
    device, why = chosen_device(audience, source, pane)
    derived: list[str] = []
    if audience is not None:
        own = context_from_request(request, now)
        visitor = audience_visitor(audience, now, own.daypart, own.weekday, device)
        derived = [names.get(slug, slug) for slug in sorted(visitor.segments - audience.segments, key=lambda slug: names.get(slug, slug))]
        request._tailored_visitor = visitor
        summary = audience.describe(names, f"{device}, {why}")
    else:
        as_yourself(request, pane, now)
        summary = f"yourself (your own cookies) · {device}, {why}" if pane else "yourself (your own cookies and device)"
    return {
        "source": source,
        "audience": audience,
        "summary": summary,
        "derived": derived_sentence(derived),
        "device_explicit": audience is not None and audience.device is not None,
        "pane_device": pane or "",
        "segments": list(names.items()),
        "devices": PREVIEW_DEVICES,
        "dayparts": DAYPARTS,
        "weekdays": WEEKDAYS,
        "weather": WEATHER_CONDITIONS,
        "cookie": AUDIENCE_COOKIE,
        "device_cookie": DEVICE_COOKIE,
    }


def as_yourself(request: HttpRequest, pane: str | None, now: float) -> None:
    """The editor as themselves, on the preview pane's device when it is known: their own
    profile, and the segments it is in with that device."""
    if pane is None:
        return
    own = resolve_visitor(request, now)
    if own.context.device == pane:
        return
    context = replace(own.context, device=pane)
    segment_set, _ = segment_cache.current()
    segments = matching_segments(segment_set.definitions, own.profile, context, now)
    request._tailored_visitor = replace(own, context=context, segments=segments)


def derived_sentence(names: list[str]) -> str:
    """Why the audience is in segments nobody picked: "Also in New visitors: its rule holds for
    this context." (an empty profile and the audience's context satisfy the rule)."""
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    rule = "its rule holds" if len(names) == 1 else "their rules hold"
    return f"Also in {listed}: {rule} for this context (a visitor with no history, on this device, at this time)."
