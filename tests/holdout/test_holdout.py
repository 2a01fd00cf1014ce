"""The global holdout (issue 9 item 7): who is held out, what they see on SSR and GraphQL, and
what is counted (unique exposures, once-per-goal conversions after exposure), then flushed."""

from __future__ import annotations

import json
import time

import pytest

from tailored import conf, erasure, holdout, services
from tailored.core.bucketing import in_global_holdout
from tailored.experiments.counting import counters
from tailored.models import HoldoutCount
from tests.helpers import consent_cookies, make_fan, signed_visitor_id, ssr_variants

from .conftest import (
    ELECTRONICS_HERO,
    ELECTRONICS_VARIANT,
    FALLBACK_HERO,
    HOME_BLOCK,
    pending,
    visitor_ids,
)

pytestmark = pytest.mark.django_db
HERO_QUERY = '{ page(urlPath: "/") { ... on HomePage { body { id ... on PersonalizedBlock { variant } } } } }'


def post_events(client, *events: dict):
    return client.post("/api/events", json.dumps({"events": list(events)}), content_type="application/json")


def click(event_id: str, ts: float | None = None) -> dict:
    return {"type": "click", "id": event_id, "ts": int((ts or time.time()) * 1000), "target": "link"}


def graphql(client, query: str = HERO_QUERY):
    response = client.post("/graphql/", json.dumps({"query": query}), content_type="application/json")
    assert "errors" not in response.json(), response.json()
    return response


def test_the_group_is_the_core_hash_and_stable(holdout_on):
    fan = visitor_ids(held=True)[0]
    request_visitor = lambda: services.resolve_visitor(_request(fan))  # noqa: E731
    assert all(holdout.in_holdout(request_visitor()) for _ in range(3))
    assert in_global_holdout(fan, 0.5)
    assert not holdout.in_holdout(services.resolve_visitor(_request(visitor_ids(held=False)[0])))


def _request(visitor_id: str):
    from django.test import RequestFactory

    from tailored.middleware import VisitorMiddleware

    request = RequestFactory(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0").get("/")
    request.COOKIES.update({"tl_consent": "analytics.personalization", "tl_vid": signed_visitor_id(visitor_id)})
    VisitorMiddleware(lambda r: None)(request)
    return request


def test_held_out_fans_see_fallbacks_on_ssr_and_graphql_while_others_see_their_variant(client, holdout_on):
    held, personalized = visitor_ids(held=True)[0], visitor_ids(held=False)[0]
    for visitor_id in (held, personalized):
        make_fan(visitor_id)
    consent_cookies(client, held)
    html = client.get("/").content.decode()
    assert FALLBACK_HERO in html and ELECTRONICS_HERO not in html
    assert set(ssr_variants(html)) == {"fallback"} and 'data-tl-holdout="1"' in html
    body = graphql(client).json()["data"]["page"]["body"]
    assert {b["variant"] for b in body if "variant" in b} == {"fallback"}
    consent_cookies(client, personalized)
    html = client.get("/").content.decode()
    assert ELECTRONICS_HERO in html and ssr_variants(html)[0] == ELECTRONICS_VARIANT and "data-tl-holdout" not in html
    body = graphql(client).json()["data"]["page"]["body"]
    assert next(b["variant"] for b in body if b["id"] == HOME_BLOCK) == ELECTRONICS_VARIANT


def test_graphql_decisions_list_the_holdout(client, holdout_on):
    held = visitor_ids(held=True)[0]
    consent_cookies(client, held)
    listed = graphql(client).json()["extensions"]["decisions"]
    assert {"block": HOME_BLOCK, "variant": "fallback", "experiment": None, "arm": None, "holdout": True} in listed
    assert all(d["holdout"] for d in listed)
    consent_cookies(client, visitor_ids(held=False)[0])
    assert not any(d["holdout"] for d in graphql(client).json()["extensions"]["decisions"])


def test_the_fragment_cache_keeps_the_holdout_mark_to_the_held_out(client, holdout_on):
    # Anonymous, held-out and personalized visitors all get the fallback hero here; only the
    # held-out one's wrapper says so, whichever order the cache is filled in.
    held, personalized = visitor_ids(held=True)[0], visitor_ids(held=False)[0]
    consent_cookies(client, held)
    assert 'data-tl-holdout="1"' in client.get("/").content.decode()
    consent_cookies(client, personalized)
    assert "data-tl-holdout" not in client.get("/").content.decode()
    consent_cookies(client, held)
    assert 'data-tl-holdout="1"' in client.get("/").content.decode()


def test_each_visitor_is_counted_once_in_their_group(client, holdout_on):
    held, personalized = visitor_ids(held=True, count=2), visitor_ids(held=False)
    for visitor_id in [*held, *personalized]:
        consent_cookies(client, visitor_id)
        client.get("/")
        client.get("/")  # a second page view
        graphql(client)  # and the same blocks through GraphQL
    assert pending("n") == {"holdout": 2, "personalized": 1}


def test_visitors_without_consent_or_id_and_bots_are_never_held_out_or_counted(client, holdout_on):
    held = visitor_ids(held=True)[0]
    make_fan(held)
    client.cookies["tl_vid"] = signed_visitor_id(held)  # an id the hash holds out, but no consent
    html = client.get("/").content.decode()
    assert "data-tl-holdout" not in html
    client.cookies.clear()
    client.get("/")  # anonymous
    consent_cookies(client, held)
    client.get("/", HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert pending("n") == {}


def test_conversions_count_once_per_goal_and_only_after_exposure(client, holdout_on):
    held, personalized, never = visitor_ids(held=True)[0], *visitor_ids(held=False, count=2)
    consent_cookies(client, never)
    assert post_events(client, click("never-1")).status_code == 202  # clicked, never shown a block
    consent_cookies(client, held)
    assert post_events(client, click("early", ts=time.time() - 3600)).status_code == 202  # before exposure
    for visitor_id in (held, personalized):
        consent_cookies(client, visitor_id)
        client.get("/")
        assert post_events(client, click(f"{visitor_id[-4:]}-1"), click(f"{visitor_id[-4:]}-2")).status_code == 202
        assert post_events(client, click(f"{visitor_id[-4:]}-1")).status_code == 202  # a replayed id
    assert pending("c", "click") == {"holdout": 1, "personalized": 1}
    # A server-side purchase is a second goal: once more, once.
    consent_cookies(client, personalized)
    visitor = services.resolve_visitor(client.get("/").wsgi_request)
    services.record_events(visitor, [services.purchase_event("A-1", 42.0)])
    services.record_events(visitor, [services.purchase_event("A-2", 10.0)])
    assert pending("c", "purchase") == {"personalized": 1}


def test_holdout_off_holds_out_nobody_and_counts_nothing(client, memory_store):
    assert conf.get("GLOBAL_HOLDOUT_PERCENT") == 0
    held = visitor_ids(held=True)[0]
    make_fan(held)
    consent_cookies(client, held)
    html = client.get("/").content.decode()
    assert ELECTRONICS_HERO in html and "data-tl-holdout" not in html
    post_events(client, click("c-1"))
    assert counters().pending(holdout.HOLDOUT_KEY) == {}


def test_previews_never_count(admin_client, holdout_on):
    from cms.models import HomePage

    consent_cookies(admin_client, visitor_ids(held=True)[0])
    home = HomePage.objects.get()
    assert admin_client.get(f"/admin/pages/{home.pk}/edit/preview/").status_code == 200
    assert pending("n") == {}


def test_the_holdout_key_cannot_be_an_experiment_key():
    from django.core.validators import validate_slug

    with pytest.raises(Exception):  # noqa: B017, PT011 - ValidationError: a colon is not a slug character
        validate_slug(holdout.HOLDOUT_KEY)


def test_erasure_forgets_the_id_but_keeps_the_counts(client, holdout_on):
    held = visitor_ids(held=True)[0]
    consent_cookies(client, held)
    client.get("/")
    erasure.erase_visitor(held)
    assert held not in counters().exposed_visitors(holdout.HOLDOUT_KEY)
    assert pending("n") == {"holdout": 1}


def test_flush_moves_counts_into_hourly_rows_once(client, holdout_on):
    held, personalized = visitor_ids(held=True)[0], visitor_ids(held=False)[0]
    for visitor_id in (held, personalized):
        consent_cookies(client, visitor_id)
        client.get("/")
        post_events(client, click(f"{visitor_id[-4:]}-1"))
    assert holdout.flush() == 4
    assert holdout.flush() == 0  # nothing new
    rows = {(r.group, r.goal): (r.visitors, r.conversions) for r in HoldoutCount.objects.all()}
    assert rows == {("holdout", ""): (1, 0), ("personalized", ""): (1, 0), ("holdout", "click"): (0, 1), ("personalized", "click"): (0, 1)}
    assert counters().pending(holdout.HOLDOUT_KEY) == {}
