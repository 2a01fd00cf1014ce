"""Which pages a shared cache may keep (issue 21 items 1 and 2): pages that do not vary are
public, pages that vary only by the audience key are public per key when a proxy sends it, and
everything that depends on the visitor stays private."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cms.models import CategoryPage, LandingPage, ProductPage
from tailored.core.audience import parse_audience_key
from tailored.core.types import DAYPARTS, WEEKDAYS
from tests.conftest import MOBILE_UA
from tests.helpers import consent_cookies, make_fan, ssr_variants

pytestmark = pytest.mark.django_db

PUBLIC = "public, max-age=0, s-maxage=300"
FAN = "f" * 32
DESKTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def vary(response) -> set[str]:
    return {value.strip() for value in response.get("Vary", "").split(",") if value.strip()}


def test_pages_without_personalized_blocks_are_public_and_the_same_for_everyone(client, django_user_model):
    category, product = CategoryPage.objects.live().first(), ProductPage.objects.live().first()
    for url in (category.url, product.url):
        anonymous = client.get(url)
        client.cookies["tl_consent"] = "none"
        declined = client.get(url)
        make_fan(FAN)
        consent_cookies(client, FAN)
        consenting = client.get(url)
        client.cookies.clear()
        for response in (anonymous, declined, consenting):
            assert response["Cache-Control"] == PUBLIC
            assert not response.cookies  # no visitor id, no CSRF token
            assert "Cookie" not in vary(response) and "User-Agent" not in vary(response)
        assert anonymous.content == declined.content == consenting.content


def test_a_context_personalized_page_is_private_unless_a_proxy_sends_the_audience_key(client):
    without_key = client.get("/", HTTP_USER_AGENT=MOBILE_UA)
    assert "private" in without_key["Cache-Control"] and without_key["X-Tailored-Cache"] == "private"

    keyed = client.get("/", HTTP_USER_AGENT=DESKTOP_UA, HTTP_X_TAILORED_AUDIENCE="mobile.GB.morning.sat")
    assert keyed["Cache-Control"] == PUBLIC and keyed["X-Tailored-Cache"] == "audience"
    assert "X-Tailored-Audience" in vary(keyed) and "User-Agent" not in vary(keyed)
    # The homepage's "Hi {first_name}" asks for a user only when a session cookie came: asking
    # loaded the session, and Django then varied every visitor's shared copy by their cookies.
    assert "Cookie" not in vary(keyed)
    # The key's device decides, not the user agent: the proxy's cache key and the page agree.
    assert "Get the app" in keyed.content.decode()


def test_a_malformed_audience_key_is_ignored(client):
    response = client.get("/", HTTP_USER_AGENT=MOBILE_UA, HTTP_X_TAILORED_AUDIENCE="mobile.GB.brunch.sat")
    assert "private" in response["Cache-Control"]
    assert "Get the app" in response.content.decode()  # the request's own facts decide


def test_the_visitors_own_page_is_private(client):
    make_fan(FAN)
    consent_cookies(client, FAN)
    response = client.get("/", HTTP_X_TAILORED_AUDIENCE="desktop.GB.morning.sat")
    assert "private" in response["Cache-Control"]
    assert "The latest in electronics, picked for you" in response.content.decode()


def test_a_visitor_with_an_id_is_chosen_for_by_their_own_facts_not_the_proxys_key(client):
    """Their page is private, so no cache keeps it under the key; and GraphQL, which no proxy
    sends the key to, must choose what SSR chose (the key once replaced their device and clock)."""
    consent_cookies(client, FAN)  # consenting, no history: only context decides
    own = client.get("/", HTTP_USER_AGENT=MOBILE_UA)
    keyed = client.get("/", HTTP_USER_AGENT=MOBILE_UA, HTTP_X_TAILORED_AUDIENCE="desktop.GB.morning.sat")
    assert "private" in keyed["Cache-Control"]
    assert "Get the app" in keyed.content.decode()
    assert ssr_variants(keyed.content.decode()) == ssr_variants(own.content.decode())


def test_a_stale_session_cookie_makes_a_page_private_not_a_shared_page_that_sets_a_cookie(client):
    """Django answers an unknown session with a cookie deletion and `Vary: Cookie`, after the
    page was marked: a shared page must not carry them."""
    client.cookies["sessionid"] = "expired-or-unknown"
    response = client.get(CategoryPage.objects.live().first().url)
    assert "private" in response["Cache-Control"] and response["X-Tailored-Cache"] == "private"


def test_an_editor_gets_private_pages(client):
    client.force_login(get_user_model().objects.get(username="editor"))
    response = client.get(CategoryPage.objects.live().first().url)
    assert "private" in response["Cache-Control"]


def test_a_page_choosing_by_weather_stays_private_with_the_key(client, personalization):
    personalization(WEATHER_API_URL="http://127.0.0.1:9/")  # configured (and down): weather matters
    weather_page = LandingPage.objects.live().get(slug="weather-edit")
    response = client.get(weather_page.url, HTTP_X_TAILORED_AUDIENCE="desktop.GB.morning.sat")
    assert "private" in response["Cache-Control"]  # weather is not in the key


KEYS = st.builds(
    lambda device, country, daypart, weekday: f"{device}.{country}.{daypart}.{weekday}",
    st.sampled_from(["mobile", "tablet", "desktop"]),
    st.sampled_from(["GB", "US", "DE", "-"]),
    st.sampled_from(DAYPARTS),
    st.sampled_from(WEEKDAYS),
)
OTHER_FACTS = st.fixed_dictionaries({
    "HTTP_USER_AGENT": st.sampled_from([DESKTOP_UA, MOBILE_UA, "curl/8.0", ""]),
    "HTTP_REFERER": st.sampled_from(["", "https://www.google.com/search?q=x", "https://t.co/abc", "https://mail.example/"]),
    "HTTP_ACCEPT_LANGUAGE": st.sampled_from(["", "de-CH,de;q=0.9", "en-GB"]),
    "HTTP_CF_IPCOUNTRY": st.sampled_from(["", "FR", "JP"]),
    "REMOTE_ADDR": st.sampled_from(["127.0.0.1", "81.2.69.160", "2001:db8::1"]),
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS, facts=OTHER_FACTS, consent=st.sampled_from([None, "none"]))
def test_for_a_visitor_without_consent_the_key_alone_decides_a_shared_page(client, key, facts, consent):
    """Whatever else the request says, a page the app lets a cache keep under a key shows what
    the key alone chooses: the same variants as a bare request with that key."""
    assert parse_audience_key(key) is not None
    client.cookies.clear()
    bare = client.get("/", HTTP_X_TAILORED_AUDIENCE=key)
    if consent:
        client.cookies["tl_consent"] = consent
    other = client.get("/", HTTP_X_TAILORED_AUDIENCE=key, **{k: v for k, v in facts.items() if v})
    assert bare["X-Tailored-Cache"] == other["X-Tailored-Cache"] == "audience"
    assert ssr_variants(other.content.decode()) == ssr_variants(bare.content.decode())
