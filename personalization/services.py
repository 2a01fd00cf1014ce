"""The only I/O orchestration. SSR views, blocks and GraphQL resolvers all go through here
(the django-allauth "flows" shape), so every path sees the same visitor and makes the same choices."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

from django.http import HttpRequest, HttpResponse

from personalization import conf
from personalization.context import context_from_request
from personalization.core.segments import matching_segments
from personalization.core.types import EMPTY_PROFILE, Consent, Event, Profile, Visitor

from .segments import segment_cache

logger = logging.getLogger(__name__)

VISITOR_ID = re.compile(r"^[0-9a-f]{32}$")
CONSENT_CATEGORIES = ("analytics", "personalization")
CONSENT_MAX_AGE = 180 * 86400


def resolve_visitor(request: HttpRequest, now: float | None = None) -> Visitor:
    """Identity, context, profile and segments for this request; computed once per request."""
    cached = getattr(request, "_tailored_visitor", None)
    if cached is not None:
        return cached
    now = time.time() if now is None else now
    consent = read_consent(request)
    visitor_id = _visitor_id(request) if consent.allows_profile else None
    context = context_from_request(request, now)
    profile = _read_profile(visitor_id, now) if visitor_id and context.device != "bot" else EMPTY_PROFILE
    segments = matching_segments(segment_cache.current(), profile, context, now)
    visitor = Visitor(id=visitor_id, consent=consent, context=context, profile=profile, segments=segments)
    request._tailored_visitor = visitor
    return visitor


def read_consent(request: HttpRequest) -> Consent:
    """The consent cookie, overridden by the browser's Global Privacy Control or Do Not Track."""
    cached = getattr(request, "_tailored_consent", None)
    if cached is None:
        cached = request._tailored_consent = _consent_from_cookies(request)
    return cached


def _consent_from_cookies(request: HttpRequest) -> Consent:
    opted_out = request.META.get("HTTP_SEC_GPC") == "1" or request.META.get("HTTP_DNT") == "1"
    raw = request.COOKIES.get(conf.get("CONSENT_COOKIE"))
    if raw is None:
        return Consent(opted_out_by_browser=opted_out)
    granted = set(raw.split("."))
    return Consent(
        decided=True,
        analytics="analytics" in granted,
        personalization="personalization" in granted,
        opted_out_by_browser=opted_out,
    )


def record_events(visitor: Visitor, events: Sequence[Event]) -> int:
    """Store a validated batch for a consenting visitor; returns how many events were stored.
    Server-side events (e.g. purchases) enter here too."""
    if visitor.id is None or not visitor.consent.allows_profile or visitor.context.device == "bot":
        return 0
    conf.get_profile_store().record(visitor.id, events)
    return len(events)


def set_consent(request: HttpRequest, response: HttpResponse, granted: Sequence[str]) -> None:
    """Store the visitor's answer. A pseudonymous id is issued only when something was granted;
    withdrawing consent erases what was held and removes the id."""
    granted = [c for c in CONSENT_CATEGORIES if c in granted]
    cookie = {"max_age": CONSENT_MAX_AGE, "samesite": "Lax", "secure": request.is_secure()}
    response.set_cookie(conf.get("CONSENT_COOKIE"), ".".join(granted) or "none", **cookie)
    existing_id = _visitor_id(request)
    if granted:
        response.set_cookie(conf.get("VISITOR_COOKIE"), existing_id or uuid.uuid4().hex, httponly=True, **cookie)
        return
    if existing_id:
        erase_visitor(existing_id)
    response.delete_cookie(conf.get("VISITOR_COOKIE"), samesite="Lax")


def erase_visitor(visitor_id: str) -> None:
    conf.get_profile_store().erase(visitor_id)


def _visitor_id(request: HttpRequest) -> str | None:
    raw = request.COOKIES.get(conf.get("VISITOR_COOKIE"), "")
    return raw if VISITOR_ID.match(raw) else None


def _read_profile(visitor_id: str, now: float) -> Profile:
    try:
        return conf.get_profile_store().get(visitor_id, now)
    except Exception as error:  # the store being down must never break a page
        logger.warning("profile store unavailable, serving defaults: %s", error)
        return Profile(visitor_id=visitor_id)
