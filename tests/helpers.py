"""Small helpers shared by the database tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

from tailored import conf
from tailored.core.types import Event
from tailored.experiments.services import experiment_cache

T = TypeVar("T")

CONSENT_GRANTED = "analytics.personalization"

# The demo homepage's hero block (fixtures/demo/home.json): its id, variants and headings.
HOME_BLOCK = "6d1f6c52-4a4e-4a4f-9b0a-0c3f2b1d7a10"
ELECTRONICS_VARIANT = "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01"
OUTDOORS_VARIANT = "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a02"
FALLBACK_HERO = "Good things for every day"
ELECTRONICS_HERO = "The latest in electronics, picked for you"
OUTDOORS_HERO = "Ready for the trail?"
# The personalized blocks' wrappers only: a recommendation block's data-tl-variant names the model
# version that chose its list (issue 17 item 5), not a variant of the page's rules.
VARIANT_ATTR = re.compile(r'class="tl-personalized" data-tl-variant="([^"]+)"')


def mid_hour_now() -> float:
    """A recent time at the middle of its hour, never in the future: events up to half an hour
    before it share one hourly bucket, whenever the test runs (time.time() near :00 split them)."""
    return (time.time() - 1800) // 3600 * 3600 + 1800


def make_fan(visitor_id: str, category: str = "electronics", views: int = 3) -> None:
    """Record `views` product views of `category` for the visitor in the configured store."""
    now = time.time()
    events = [
        Event(f"{category}-{i}", "page_view", ts=now - i, category=category, item=str(i + 1), attrs={"page_type": "product"})
        for i in range(views)
    ]
    conf.get_profile_store().record(visitor_id, events, now)


def signed_visitor_id(visitor_id: str) -> str:
    """The `tl_vid` cookie value the site itself sets for this id (signed with SECRET_KEY)."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from tailored.services import set_visitor_cookie

    response = HttpResponse()
    set_visitor_cookie(RequestFactory().get("/"), response, visitor_id)
    return response.cookies[conf.get("VISITOR_COOKIE")].value


def consent_cookies(client, visitor_id: str) -> None:
    client.cookies["tl_consent"] = CONSENT_GRANTED
    client.cookies["tl_vid"] = signed_visitor_id(visitor_id)


def ssr_variants(html: str) -> list[str]:
    """The variant keys a server-rendered page's personalized blocks chose, in page order."""
    return VARIANT_ATTR.findall(html)


def experiment_cache_cleared():
    """For an autouse fixture: the running-experiment cache is process-wide, so a test starts and
    ends with it empty and due for a reload, and an experiment rolled back with a test never leaks
    into the next."""
    experiment_cache.clear()
    yield
    experiment_cache.clear()


def steady_queries(ask: Callable[[], T], times: int = 3) -> tuple[list[str], T]:
    """The SQL of the steady state and what `ask` returned: of `times` calls, the one with the
    fewest queries. Process-wide caches (segments, triggers, traits, sites) re-check their tables
    every few seconds and reload what an earlier test rolled back; on a slow run such a re-check
    can land in any one request. A cost that grows with the content shows in every call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counted = []
    for _ in range(times):
        segment_cache_checked()
        with CaptureQueriesContext(connection) as captured:
            answer = ask()
        counted.append(([query["sql"] for query in captured.captured_queries], answer))
    return min(counted, key=lambda found: len(found[0]))


def with_locale_middleware(settings) -> None:
    """English and French, chosen by cookie or Accept-Language (LocaleMiddleware, no URL prefix)."""
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    at = settings.MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware") + 1
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:at], "django.middleware.locale.LocaleMiddleware", *settings.MIDDLEWARE[at:]]


def segment_cache_checked() -> None:
    """Before a measured request: the segment cache re-checks its table every few seconds and
    reloads it (three queries) when an earlier test changed it. Checking it now, forced, keeps both
    out of the request; only asking for the current set could return one checked almost a refresh
    interval ago (CI on PostgreSQL saw the reload inside a measured request)."""
    from tailored.segments import segment_cache

    segment_cache.invalidate()
    segment_cache.current()


def post_events(client, events: list[dict]) -> None:
    """What tracker.js posts: `events` stamped now; accepted whole (202)."""
    import json

    now = int(time.time() * 1000)
    body = json.dumps({"events": [{"ts": now, **event} for event in events]})
    response = client.post("/api/events", body, content_type="application/json")
    assert response.status_code == 202, response.content


def drain_stream(redis_client, name: str = "drain") -> None:
    """A stream worker's turns until the stream is empty."""
    from tailored import worker

    consumer = worker.Consumer(name=name, batch=50, block_ms=0, claim_idle_seconds=0)
    while worker.process_once(redis_client, consumer):
        pass


def keys_naming(redis_client, visitor_id: str) -> list[str]:
    """Every Redis key whose name holds the id."""
    return sorted(key for key in redis_client.scan_iter(count=1000) if visitor_id in key)
