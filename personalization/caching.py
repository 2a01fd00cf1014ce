"""Which pages a shared cache may keep, and under what key (issue 21 items 1 and 2).

A Wagtail page response is marked for caching by VisitorMiddleware from what its decisions
actually read (`core.audience`):

* shared: nothing on it depends on the visitor (no personalized block, or blocks whose choice
  for a visitor without consent reads nothing of their request): `Cache-Control` is the site's
  PUBLIC_CACHE_CONTROL (default "public, max-age=0, s-maxage=300");
* audience: the choices read only the audience key's facts (device, country, daypart,
  weekday), and a proxy sent the key (AUDIENCE_HEADER): public as above, with
  `Vary: X-Tailored-Audience`. The proxy keys its cache on the key and passes visitors who
  granted personalization, and logged-in users, to the app (docs/deploy/): their pages are
  their own, and answered private;
* private: anything else: a visitor with a pseudonymous id whose visitor was resolved (their
  segments, scores, experiment arms), an audience page without the key, a logged-in user, an
  editor's preview or explanation, a CSRF token, a response setting a cookie, or a choice that
  read the referrer, the hour, the region, the weather or an unknown condition.

Blocks report what their choice read with `note_facts`; PersonalizedBlock.choose calls
`note_variants` with the targeting of the variants it chose among.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

from tailored import conf
from tailored.core.audience import (
    AUDIENCE,
    PRIVATE,
    SHARED,
    Audience,
    dependence,
    parse_audience_key,
    rule_facts,
    variant_facts,
)
from tailored.core.selection import VariantTags

FACTS_ATTRIBUTE = "_tailored_facts"
PAGE_ATTRIBUTE = "_tailored_page"
PRIVATE_ATTRIBUTE = "_tailored_private"
# The head's consent script is told when the browser sent one of these (frontend.partials).
PRIVACY_SIGNALS = ("Sec-GPC", "DNT")
WEATHER_FACTS = frozenset({"weather", "temperature_c"})

_segment_facts: tuple[object, dict[str, frozenset[str]]] = (None, {})


def segment_facts() -> dict[str, frozenset[str]]:
    """The facts each enabled segment's rule reads, recomputed when the segment set changes (kept
    with the set itself, not its id, which a new set could reuse)."""
    global _segment_facts
    from tailored.segments import segment_cache

    segment_set, _ = segment_cache.current()
    if _segment_facts[0] is not segment_set:
        _segment_facts = (segment_set, {d.slug: rule_facts(d.rule.source) for d in segment_set.definitions})
    return _segment_facts[1]


def note_facts(request: HttpRequest | None, facts: Iterable[str]) -> None:
    """Record that this request's response depends on `facts` (for its Cache-Control)."""
    if request is None:
        return
    noted: set[str] | None = getattr(request, FACTS_ATTRIBUTE, None)
    if noted is None:
        noted = set()
        setattr(request, FACTS_ATTRIBUTE, noted)
    noted.update(facts)


def note_variants(request: HttpRequest | None, tags: Sequence[VariantTags]) -> None:
    """A PersonalizedBlock chose among these variants by its targeting rules."""
    if request is None:
        return
    facts = frozenset().union(*(variant_facts(t, segment_facts()) for t in tags))
    if not conf.get("WEATHER_API_URL"):
        facts -= WEATHER_FACTS  # no weather service: the weather is unknown for every visitor alike
    note_facts(request, facts)


def mark_private(request: HttpRequest | None) -> None:
    """Something on the page is for this visitor alone (a form with a token, their data)."""
    if request is not None:
        setattr(request, PRIVATE_ATTRIBUTE, True)


def proxy_audience(request: HttpRequest) -> Audience | None:
    """The audience key a proxy or CDN computed for this request (AUDIENCE_HEADER), if valid."""
    header = conf.get("AUDIENCE_HEADER")
    if not header:
        return None
    # request.META, not request.headers: building the headers mapping costs more than the rest.
    return parse_audience_key(request.META.get("HTTP_" + header.upper().replace("-", "_")))


def policy(request: HttpRequest, response: HttpResponse) -> str:
    """SHARED, AUDIENCE or PRIVATE for a response to `request`."""
    visitor = getattr(request, "_tailored_visitor", None)
    if (
        getattr(request, PRIVATE_ATTRIBUTE, False)
        or response.cookies
        or request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        or getattr(request, "is_preview", False)
        or request.GET.get("explain") == "1"
        or (visitor is not None and visitor.id is not None)
        # Any session, not only a logged-in one: Django answers a stale or anonymous session with
        # `Vary: Cookie` (and a stale one with a cookie deletion) after this middleware has run;
        # the shipped proxy configs pass every request with a session cookie to the app anyway.
        or settings.SESSION_COOKIE_NAME in request.COOKIES
    ):
        return PRIVATE
    kind = dependence(getattr(request, FACTS_ATTRIBUTE, ()))
    if kind == AUDIENCE and proxy_audience(request) is None:
        return PRIVATE
    return kind


def logged_in(request: HttpRequest) -> bool:
    # Without a session cookie nobody is logged in; asking request.user would load the session
    # and make Django's SessionMiddleware add `Vary: Cookie` to a page every visitor shares.
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def apply(request: HttpRequest, response: HttpResponse) -> None:
    """Mark a page response by `policy`; any other response as before: private as soon as it
    read the visitor or their consent."""
    if getattr(request, PAGE_ATTRIBUTE, None) is None or not _cacheable_response(request, response):
        if hasattr(request, "_tailored_visitor") or hasattr(request, "_tailored_consent"):
            _private(response)
        return
    kind = policy(request, response)
    response["X-Tailored-Cache"] = kind  # for operators: why a page was (not) shared
    if kind == PRIVATE:
        _private(response)
        return
    response["Cache-Control"] = conf.get("PUBLIC_CACHE_CONTROL")
    patch_vary_headers(response, PRIVACY_SIGNALS)
    if kind == AUDIENCE:
        patch_vary_headers(response, (conf.get("AUDIENCE_HEADER"),))


def _private(response: HttpResponse) -> None:
    patch_vary_headers(response, ("Cookie", "User-Agent"))
    patch_cache_control(response, private=True)


def _cacheable_response(request: HttpRequest, response: HttpResponse) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and response.status_code == 200
        and not response.has_header("Cache-Control")
        and not getattr(response, "streaming", False)
    )


def remember_page(request: HttpRequest, page: Any) -> None:
    """Wagtail's before_serve_page: this response is a page (the only kind `apply` may share)."""
    setattr(request, PAGE_ATTRIBUTE, page)


__all__ = ["AUDIENCE", "PRIVATE", "SHARED", "apply", "mark_private", "note_facts", "note_variants", "policy"]
