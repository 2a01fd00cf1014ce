"""context_from_request: every provider wired together, visitor-local time, and the budget."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import pytest
from django.test import RequestFactory

from tailored.context import context_from_request
from tailored.context.request import visitor_zone
from tailored.context.weather import refresh_weather
from tailored.core.types import Context

from ..conftest import DESKTOP_UA, MOBILE_UA

# The enabled segments decide which facts are built (read from the database at most every
# SEGMENT_REFRESH_SECONDS): run alone, this module reads them too.
pytestmark = pytest.mark.django_db

factory = RequestFactory()
# Monday 6 January 2025, 08:00 UTC.
MONDAY_8_UTC = datetime(2025, 1, 6, 8, 0, tzinfo=UTC).timestamp()
# Sunday 5 January 2025, 23:30 UTC: already Monday in Tokyo.
SUNDAY_LATE_UTC = datetime(2025, 1, 5, 23, 30, tzinfo=UTC).timestamp()


def build(now=MONDAY_8_UTC, cookies=None, **meta):
    request = factory.get("/", **meta)
    request.COOKIES.update(cookies or {})
    return context_from_request(request, now)


# Visitor-local time


def test_geo_timezone_sets_daypart_and_weekday(settings):
    settings.PERSONALIZATION = {}
    context = build(HTTP_CF_IPCOUNTRY="JP")
    assert (context.timezone, context.local_hour, context.daypart, context.weekday) == ("Asia/Tokyo", 17, "evening", "mon")
    context = build(now=SUNDAY_LATE_UTC, HTTP_CF_IPCOUNTRY="JP")
    assert (context.local_hour, context.daypart, context.weekday) == (8, "morning", "mon")


def test_geo_region_timezone(settings):
    settings.PERSONALIZATION = {"GEO_REGION_HEADER": "X-Region"}
    context = build(HTTP_CF_IPCOUNTRY="US", HTTP_X_REGION="CA")
    assert (context.timezone, context.local_hour, context.daypart, context.weekday) == ("America/Los_Angeles", 0, "night", "mon")


def test_the_client_hint_cookie_without_geo(settings):
    settings.PERSONALIZATION = {}
    context = build(cookies={"tl_tz": "America%2FNew_York"})
    assert (context.timezone, context.local_hour, context.daypart, context.weekday) == ("America/New_York", 3, "night", "mon")
    context = build(now=SUNDAY_LATE_UTC, cookies={"tl_tz": "America/New_York"})
    assert (context.local_hour, context.weekday) == (18, "sun")


def test_the_cookie_beats_a_multi_timezone_countrys_guess(settings):
    settings.PERSONALIZATION = {}
    context = build(HTTP_CF_IPCOUNTRY="US", cookies={"tl_tz": "America/Chicago"})
    assert (context.country, context.timezone, context.local_hour) == ("US", "America/Chicago", 2)


def test_a_single_timezone_country_beats_the_cookie(settings):
    settings.PERSONALIZATION = {}
    context = build(HTTP_CF_IPCOUNTRY="DE", cookies={"tl_tz": "America/Chicago"})
    assert (context.timezone, context.local_hour) == ("Europe/Berlin", 9)


# "America" and "America/Argentina" are folders of zones: with the `tzdata` package (a dev
# dependency, as on sites without system zone files) ZoneInfo raised IsADirectoryError, a 500.
@pytest.mark.parametrize("cookie", [None, "Mars/Olympus_Mons", "../../etc/passwd", "", "x" * 500, "America", "America/Argentina", "Etc"])
def test_otherwise_the_sites_time_zone(settings, cookie):
    settings.PERSONALIZATION = {}
    settings.TIME_ZONE = "Asia/Kolkata"
    context = build(cookies={"tl_tz": cookie} if cookie is not None else {})
    # Local time is the site's; the visitor's zone stays unknown.
    assert (context.timezone, context.local_hour, context.daypart) == (None, 13, "afternoon")


# The first page (issue 15 item 4): no tl_tz before consent, so the Accept-Language region decides
# where geo cannot, and only where that country has one zone or one most of its people live on.


@pytest.mark.parametrize(
    ("accept_language", "zone", "hour"),
    [
        ("en-GB,en;q=0.9", "Europe/London", 8),
        ("de-CH", "Europe/Zurich", 9),
        ("pt-BR,pt;q=0.8", "America/Sao_Paulo", 5),
        ("fr-CA", "America/Toronto", 3),
        ("ja;q=0.5,ja-JP", "Asia/Tokyo", 17),
    ],
)
def test_without_geo_or_hint_the_language_region_gives_the_zone(settings, accept_language, zone, hour):
    settings.PERSONALIZATION = {}
    settings.TIME_ZONE = "Asia/Kolkata"
    context = build(HTTP_ACCEPT_LANGUAGE=accept_language)
    assert (context.timezone, context.local_hour) == (zone, hour)


@pytest.mark.parametrize("accept_language", ["en-US,en;q=0.9", "de", "es-419", "*", ""])
def test_a_language_that_names_no_single_zone_leaves_the_sites(settings, accept_language):
    settings.PERSONALIZATION = {}
    settings.TIME_ZONE = "Asia/Kolkata"
    context = build(HTTP_ACCEPT_LANGUAGE=accept_language)
    assert (context.timezone, context.local_hour) == (None, 13)


def test_geo_and_the_hint_beat_the_language(settings):
    settings.PERSONALIZATION = {}
    assert build(HTTP_CF_IPCOUNTRY="DE", HTTP_ACCEPT_LANGUAGE="en-GB").timezone == "Europe/Berlin"
    hinted = build(cookies={"tl_tz": "America/Chicago"}, HTTP_ACCEPT_LANGUAGE="en-GB")
    assert hinted.timezone == "America/Chicago"


def test_a_language_region_that_contradicts_geo_is_ignored(settings):
    settings.PERSONALIZATION = {}
    settings.TIME_ZONE = "UTC"
    # Geo says the United States (several zones); a British English browser says nothing of the clock.
    context = build(HTTP_CF_IPCOUNTRY="US", HTTP_ACCEPT_LANGUAGE="en-GB")
    assert (context.country, context.timezone, context.local_hour) == ("US", None, 8)
    context = build(HTTP_CF_IPCOUNTRY="CA", HTTP_ACCEPT_LANGUAGE="fr-CA")
    assert (context.timezone, context.local_hour) == ("America/Toronto", 3)


def test_visitor_zone_without_geo(settings):
    settings.TIME_ZONE = "UTC"
    zone, name = visitor_zone(factory.get("/"))
    assert (zone.key, name) == ("UTC", None)


# Everything together


@pytest.fixture
def fully_configured(settings, use_redis_store, weather_api):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "GEO_REGION_HEADER": "CF-Region-Code",
        "GEO_CITY_HEADER": "CF-IPCity",
        "WEATHER_API_URL": weather_api.url,
        "WEATHER_API_KEY": "k",
        "WEATHER_REGIONS": {"GB-ENG": "London,GB"},
        "REFERRER_INTERNAL_HOSTS": ["shop.example"],
    }
    return weather_api


FULL_META = {
    "HTTP_USER_AGENT": MOBILE_UA,
    "HTTP_CF_IPCOUNTRY": "GB",
    "HTTP_CF_REGION_CODE": "ENG",
    "HTTP_CF_IPCITY": "London",
    "HTTP_REFERER": "https://www.google.co.uk/",
    "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
}


def test_a_fully_configured_request(fully_configured):
    refresh_weather(["GB-ENG"])
    context = build(**FULL_META)
    assert context == Context(
        device="mobile", browser="safari", os="ios", daypart="morning", weekday="mon", local_hour=8,
        timezone="Europe/London", country="GB", region="GB-ENG", city="London",
        referrer_class="search", locale="en-GB", weather="rain", temperature_c=12.3,
        local_minute=8 * 60, path="/", referrer="https://www.google.co.uk/", referrer_host="google.co.uk",
        landing_page="/",
    )  # fmt: skip


def test_utm_parameters_reach_the_context(settings):
    settings.PERSONALIZATION = {}
    request = factory.get("/", {"utm_source": "Newsletter", "utm_medium": "email", "utm_campaign": "Spring"})
    context = context_from_request(request, MONDAY_8_UTC)
    assert (context.referrer_class, context.utm_source, context.utm_medium, context.utm_campaign) == (
        "campaign", "newsletter", "email", "spring",
    )  # fmt: skip


def test_same_site_navigation_has_no_referrer_class(settings):
    settings.PERSONALIZATION = {"REFERRER_INTERNAL_HOSTS": ["www.shop.example"]}
    assert build(HTTP_HOST="testserver", HTTP_REFERER="http://testserver/a/").referrer_class is None
    assert build(HTTP_REFERER="https://shop.example/a/").referrer_class is None
    assert build().referrer_class == "direct"


def test_no_network_call_when_the_cache_is_warm(fully_configured, redis_client):
    refresh_weather(["GB-ENG"])
    assert fully_configured.calls == 1
    redis_client.config_resetstat()
    for _ in range(20):
        assert build(**FULL_META).weather == "rain"
    assert fully_configured.calls == 1  # the weather API never heard from the request path
    # One pipelined read (region and country), memoized for the following requests.
    assert redis_client.info("commandstats")["cmdstat_get"]["calls"] == 2


def test_a_cold_cache_never_makes_the_request_wait(fully_configured):
    fully_configured.mode = "slow"
    started = time.perf_counter()
    assert build(**FULL_META).weather is None
    assert time.perf_counter() - started < 0.05


def test_no_weather_read_without_an_api_url(settings, memory_store, weather_api):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "WEATHER_API_URL": weather_api.url, "WEATHER_REGIONS": ["GB"]}
    refresh_weather({"GB": "London,GB"})
    assert build(HTTP_CF_IPCOUNTRY="GB").weather == "rain"
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "WEATHER_API_URL": None}
    assert build(HTTP_CF_IPCOUNTRY="GB").weather is None


def test_no_geo_no_weather_read(settings, weather_api):
    settings.PERSONALIZATION = {"WEATHER_API_URL": weather_api.url, "WEATHER_REGIONS": ["GB"]}
    context = build(HTTP_USER_AGENT=DESKTOP_UA)
    assert (context.country, context.weather, context.timezone) == (None, None, None)
    time.sleep(0.05)
    assert weather_api.calls == 0


def test_building_the_context_is_fast(fully_configured):
    refresh_weather(["GB-ENG"])
    requests = [factory.get("/", **FULL_META) for _ in range(600)]
    timings = []
    for request in requests:
        started = time.perf_counter()
        context_from_request(request, MONDAY_8_UTC)
        timings.append(time.perf_counter() - started)
    # Well under the whole resolve_visitor budget (0.5 ms), with every provider configured.
    assert statistics.median(timings[100:]) < 0.0002, statistics.median(timings[100:])
