"""Server-to-server visitors (issue 6): a headless frontend's server acts for its visitor with an
API key and X-Tailored-Visitor / X-Tailored-Context; without a valid key the headers change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.test import RequestFactory

from tailored.models import ApiKey
from tailored.server_visitors import create_api_key, forget_api_keys, revoke_api_keys
from tailored.services import resolve_visitor
from tests.conftest import DESKTOP_UA, MOBILE_UA
from tests.helpers import consent_cookies, make_fan, ssr_variants

pytestmark = pytest.mark.django_db

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
VISITOR = (OPERATIONS / "visitor.graphql").read_text()
HOMEPAGE = (OPERATIONS / "homepage.graphql").read_text()
FAN = "f" * 32
GRANTED = {"analytics": True, "personalization": True}


@pytest.fixture(autouse=True)
def _store(memory_store):
    forget_api_keys()
    yield memory_store
    forget_api_keys()


@pytest.fixture
def api_key() -> str:
    return create_api_key("Next.js")[1]


def server_headers(key: str | None, visitor: str | None = FAN, **context) -> dict[str, str]:
    """What a frontend's server sends for its visitor (a mobile visitor who consented, by default)."""
    context = {"user_agent": MOBILE_UA, "consent": GRANTED, **context}
    headers = {"HTTP_X_TAILORED_CONTEXT": json.dumps(context)}
    if key is not None:
        headers["HTTP_X_TAILORED_KEY"] = key
    if visitor is not None:
        headers["HTTP_X_TAILORED_VISITOR"] = visitor
    return headers


def ask(client, query: str = VISITOR, **headers) -> dict:
    # The test client itself is a desktop browser without cookies: only the headers can make
    # the visitor a mobile electronics fan.
    response = client.post("/graphql/", {"query": query}, content_type="application/json", **headers)
    assert response.status_code == 200, response.content
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_the_visitor_comes_from_the_headers_with_a_valid_key(client, api_key):
    make_fan(FAN)
    visitor = ask(client, **server_headers(api_key))["visitor"]
    assert visitor["id"] == FAN
    assert {"electronics-fans", "mobile-visitors"} <= set(visitor["segments"])
    assert visitor["context"]["device"] == "mobile"
    assert visitor["consent"] == GRANTED
    assert ApiKey.objects.get().last_used_at is not None


def test_the_page_resolves_for_the_header_visitor_as_ssr_does_for_the_browser(client, api_key):
    make_fan(FAN)
    consent_cookies(client, FAN)
    ssr = ssr_variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA).content.decode())
    client.cookies.clear()
    blocks = ask(client, HOMEPAGE, **server_headers(api_key))["page"]["body"]
    variants = [block["variant"] for block in blocks if block["blockType"] == "PersonalizedBlock"]
    assert variants == ssr
    assert "fallback" not in variants[:1]


@pytest.mark.parametrize("key", ["none", "wrong", "revoked"])
def test_forged_headers_change_nothing(client, api_key, key):
    make_fan(FAN)
    if key == "revoked":
        revoke_api_keys(ApiKey.objects.all())
    sent = {"none": None, "wrong": "x" * 40, "revoked": api_key}[key]
    plain = ask(client)
    forged = ask(client, **server_headers(sent, country="GB", local_time="2025-06-02T08:30:00+01:00"))
    assert forged == plain
    assert forged["visitor"]["id"] is None
    assert forged["visitor"]["context"]["device"] == "desktop"


@pytest.mark.parametrize("consent", [None, {"analytics": False, "personalization": False}])
def test_without_consent_there_is_no_id(client, api_key, consent):
    make_fan(FAN)
    visitor = ask(client, **server_headers(api_key, consent=consent))["visitor"]
    assert visitor["id"] is None
    assert "electronics-fans" not in visitor["segments"]
    assert "mobile-visitors" in visitor["segments"]  # context still applies


def test_analytics_consent_has_an_id_for_its_events_but_no_profile_to_target(client, api_key):
    make_fan(FAN)
    consent = {"analytics": True, "personalization": False}
    visitor = ask(client, **server_headers(api_key, consent=consent))["visitor"]
    assert visitor["id"] == FAN
    assert "electronics-fans" not in visitor["segments"]  # the fan's profile is not read
    assert "mobile-visitors" in visitor["segments"]


@pytest.mark.parametrize("signal", ["gpc-field", "sec-gpc-header", "dnt-header"])
def test_gpc_in_the_server_context_is_honoured_like_the_browsers_header(client, api_key, signal):
    make_fan(FAN)
    headers = server_headers(api_key, gpc=signal == "gpc-field")
    headers.update({"sec-gpc-header": {"HTTP_SEC_GPC": "1"}, "dnt-header": {"HTTP_DNT": "1"}}.get(signal, {}))
    visitor = ask(client, **headers)["visitor"]
    assert visitor["id"] is None
    assert "electronics-fans" not in visitor["segments"]
    consent = resolve_visitor(RequestFactory().get("/", **headers)).consent
    assert consent.opted_out_by_browser and not consent.allows_events


def test_country_and_local_time_come_from_the_context(client, api_key):
    headers = server_headers(api_key, country="gb", local_time="2025-06-02T08:30:00+01:00")
    context = ask(client, **headers)["visitor"]["context"]
    assert context == {"device": "mobile", "daypart": "morning", "weekday": "mon", "country": "GB"}


def test_every_context_fact_goes_through_the_browser_providers(api_key):
    context = {
        "user_agent": DESKTOP_UA,
        "country": "US",
        "region": "US-CA",
        "city": "San Francisco",
        "timezone": "America/New_York",  # geo names one zone for California; it wins, as for a browser
        "referrer": "https://www.google.com/search?q=shoes",
        "url": "https://shop.example.com/sale?utm_source=Newsletter&utm_campaign=Summer%20Sale",
        "accept_language": "de-CH,de;q=0.9,en;q=0.5",
        "consent": GRANTED,
    }
    request = RequestFactory().get("/", **server_headers(api_key, **context))
    now = datetime(2025, 6, 2, 3, 0, tzinfo=UTC).timestamp()  # 20:00 the day before in California
    visitor = resolve_visitor(request, now)
    got = visitor.context
    assert (got.device, got.browser, got.os) == ("desktop", "chrome", "linux")
    assert (got.country, got.region, got.city) == ("US", "US-CA", "San Francisco")
    assert (got.timezone, got.local_hour, got.daypart, got.weekday) == ("America/Los_Angeles", 20, "evening", "sun")
    assert (got.referrer_class, got.utm_source, got.utm_campaign) == ("campaign", "newsletter", "summer-sale")
    assert got.locale == "de-CH"
    assert visitor.id == FAN


def test_without_geo_or_timezone_the_language_region_gives_the_zone(api_key, settings):
    settings.TIME_ZONE = "UTC"
    headers = server_headers(api_key, accept_language="en-GB,en;q=0.8")
    now = datetime(2025, 6, 2, 7, 30, tzinfo=UTC).timestamp()  # 08:30 in London (summer time)
    context = resolve_visitor(RequestFactory().get("/", **headers), now).context
    assert (context.timezone, context.local_hour) == ("Europe/London", 8)
    headers = server_headers(api_key, accept_language="en-US")
    context = resolve_visitor(RequestFactory().get("/", **headers), now).context
    assert (context.timezone, context.local_hour) == (None, 7)  # the site's zone


def test_a_referrer_on_the_frontends_own_host_is_internal(api_key):
    headers = server_headers(api_key, referrer="https://shop.example.com/cart", url="https://shop.example.com/")
    assert resolve_visitor(RequestFactory().get("/", **headers)).context.referrer_class is None
    headers = server_headers(api_key, url="https://shop.example.com/")
    assert resolve_visitor(RequestFactory().get("/", **headers)).context.referrer_class == "direct"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"HTTP_X_TAILORED_CONTEXT": "{not json"}, "X-Tailored-Context is not valid JSON"),
        ({"HTTP_X_TAILORED_CONTEXT": "[1]"}, "X-Tailored-Context must be a JSON object"),
        ({"HTTP_X_TAILORED_CONTEXT": '{"country": 44}'}, "X-Tailored-Context: country must be a string"),
        ({"HTTP_X_TAILORED_CONTEXT": '{"consent": "yes"}'}, "X-Tailored-Context: consent must be"),
        ({"HTTP_X_TAILORED_CONTEXT": '{"gpc": "1"}'}, "X-Tailored-Context: gpc must be true or false"),
        ({"HTTP_X_TAILORED_CONTEXT": '{"local_time": "2025-06-02T08:30"}'}, "local_time must be an ISO 8601 time with a UTC offset"),
        ({"HTTP_X_TAILORED_CONTEXT": '{"timezone": "Mars/Olympus"}'}, "timezone 'Mars/Olympus' is not an IANA zone name"),
        ({"HTTP_X_TAILORED_CONTEXT": '{"timezone": "America"}'}, "timezone 'America' is not an IANA zone name"),
        ({"HTTP_X_TAILORED_VISITOR": "not-a-visitor-id"}, "X-Tailored-Visitor must be 32 lower-case hexadecimal characters"),
        # The events API's parser: bounded nesting (Python's own recursion limit was a 500), no duplicates
        ({"HTTP_X_TAILORED_CONTEXT": "[" * 2000 + "]" * 2000}, "X-Tailored-Context is not valid JSON: the JSON nests 2000 levels deep; the limit is 32"),
        ({"HTTP_X_TAILORED_CONTEXT": '{"country": "GB", "country": "FR"}'}, "X-Tailored-Context is not valid JSON: the key 'country' appears more than once"),
        ({"HTTP_X_TAILORED_VISITOR": "a" * 31 + "\n"}, "X-Tailored-Visitor must be 32 lower-case hexadecimal characters"),
    ],
    ids=["json", "not-object", "type", "consent", "gpc", "naive-time", "zone", "zone-folder", "visitor-id", "deep", "duplicate", "newline"],
)
def test_unreadable_headers_with_a_valid_key_are_a_clear_400(client, api_key, headers, message):
    sent = {**server_headers(api_key), **headers}
    response = client.post("/graphql/", {"query": VISITOR}, content_type="application/json", **sent)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "INVALID_SERVER_CONTEXT"
    assert message in error["message"]
    # Without a valid key the same headers are ignored, and an SSR page never fails on them.
    del sent["HTTP_X_TAILORED_KEY"]
    assert ask(client, **sent)["visitor"]["id"] is None
    assert client.get("/", **{**server_headers(api_key), **headers}).status_code == 200


def test_a_headless_visitors_page_query_and_referrer_reach_the_rules(api_key):
    headers = server_headers(
        api_key, url="https://shop.example/offers/spring/?promo=spring&ref=x", referrer="https://www.news.example/story"
    )
    context = resolve_visitor(RequestFactory().get("/graphql/", **headers)).context
    assert (context.path, dict(context.query)) == ("/offers/spring/", {"promo": "spring", "ref": "x"})
    assert (context.referrer_host, context.landing_page) == ("news.example", "/offers/spring/")
    inside = server_headers(api_key, url="https://shop.example/products/", referrer="https://shop.example/?promo=spring")
    context = resolve_visitor(RequestFactory().get("/graphql/", **inside)).context
    assert (dict(context.session_query), context.landing_page) == ({"promo": "spring"}, None)
