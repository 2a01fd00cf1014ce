"""Weather: the OpenWeather client against a real local server, its timeout and circuit
breaker, the 15-minute cache (real Redis), and the request path that only reads the cache."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core.management import CommandError, call_command

from tailored.context import weather
from tailored.context.weather import (
    CircuitBreaker,
    MemoryWeatherCache,
    OpenWeatherProvider,
    WeatherReport,
    condition_from_openweather,
    configuration_errors,
    parse_regions,
    refresh_weather,
    weather_for,
)
from tailored.core.types import WEATHER_CONDITIONS

from .conftest import RAIN

MEMORY = "tailored.profiles.memory.MemoryProfileStore"


def configure(settings, api, **extra):
    settings.PERSONALIZATION = {
        **getattr(settings, "PERSONALIZATION", {}),
        "WEATHER_API_URL": api.url,
        "WEATHER_API_KEY": "secret-key",
        "WEATHER_REGIONS": {"GB-ENG": "London,GB", "US-CA": "34.05,-118.24"},
        **extra,
    }


def wait_for_background_fetches(limit: float = 3.0) -> None:
    deadline = time.monotonic() + limit
    while weather._inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not weather._inflight


# The client


def test_a_good_answer_is_parsed(weather_api):
    provider = OpenWeatherProvider(weather_api.url, "secret-key", {"GB-ENG": "London,GB"})
    report = provider.fetch("GB-ENG")
    assert report == WeatherReport("rain", 12.3, 1736150400.0)
    assert weather_api.queries == [{"q": "London,GB", "units": "metric", "appid": "secret-key"}]


def test_lat_lon_locations_and_bare_keys(weather_api):
    provider = OpenWeatherProvider(weather_api.url, None, {"US-CA": "34.05,-118.24"})
    provider.fetch("US-CA")
    provider.fetch("Paris,FR")
    assert weather_api.queries == [
        {"lat": "34.05", "lon": "-118.24", "units": "metric"},
        {"q": "Paris,FR", "units": "metric"},
    ]


@pytest.mark.parametrize("mode", ["slow", "error", "garbage"])
def test_failures_fall_back_to_none_within_the_budget(weather_api, mode):
    weather_api.mode = mode
    provider = OpenWeatherProvider(weather_api.url, timeout=0.3)
    started = time.perf_counter()
    assert provider.fetch("GB-ENG") is None
    assert time.perf_counter() - started < 0.5
    assert provider.breaker.failures == 1


@pytest.mark.parametrize(
    "payload",
    [[], {"weather": []}, {"weather": [{"id": 999}]}, {"weather": ["rain"]}, {"main": {"temp": 3}}],
)
def test_answers_that_are_not_weather_count_as_failures(weather_api, payload):
    weather_api.payload = payload
    provider = OpenWeatherProvider(weather_api.url)
    assert provider.fetch("GB-ENG") is None
    assert provider.breaker.failures == 1


def test_a_client_error_is_configuration_not_an_outage(weather_api):
    weather_api.mode = "notfound"
    provider = OpenWeatherProvider(weather_api.url, breaker=CircuitBreaker(failure_threshold=1))
    assert provider.fetch("Atlantis,XX") is None
    assert provider.breaker.state == "closed"


def test_a_refused_connection_is_a_failure():
    provider = OpenWeatherProvider("http://127.0.0.1:9/weather")  # discard port: nothing listens
    started = time.perf_counter()
    assert provider.fetch("GB-ENG") is None
    assert time.perf_counter() - started < 0.5 and provider.breaker.failures == 1


def test_the_breaker_opens_fails_fast_and_closes_after_a_good_trial(weather_api):
    weather_api.mode = "error"
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=0.4)
    provider = OpenWeatherProvider(weather_api.url, breaker=breaker)
    for _ in range(3):
        assert provider.fetch("GB-ENG") is None
    assert breaker.state == "open" and weather_api.calls == 3

    started = time.perf_counter()
    for _ in range(20):
        assert provider.fetch("GB-ENG") is None
    assert time.perf_counter() - started < 0.05
    assert weather_api.calls == 3  # while open, the server hears nothing

    time.sleep(0.45)
    weather_api.mode = "ok"
    assert provider.fetch("GB-ENG").condition == "rain"  # the half-open trial
    assert breaker.state == "closed" and weather_api.calls == 4
    provider.fetch("GB-ENG")
    assert weather_api.calls == 5


def test_a_failed_trial_opens_the_breaker_again(weather_api):
    weather_api.mode = "error"
    breaker = CircuitBreaker(failure_threshold=2, cooldown_seconds=0.3)
    provider = OpenWeatherProvider(weather_api.url, breaker=breaker)
    provider.fetch("GB-ENG")
    provider.fetch("GB-ENG")
    time.sleep(0.35)
    assert provider.fetch("GB-ENG") is None
    assert breaker.state == "open" and weather_api.calls == 3
    assert provider.fetch("GB-ENG") is None
    assert weather_api.calls == 3


def test_half_open_lets_exactly_one_trial_through():
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=10, clock=lambda: now[0])
    breaker.record_failure()
    now[0] = 10.0
    assert breaker.allow() is True
    assert breaker.allow() is False  # the trial is still out
    now[0] = 20.0
    assert breaker.allow() is True  # a trial that never reported back does not wedge it


@pytest.mark.parametrize(
    ("code", "main", "condition"),
    [
        (200, None, "storm"), (211, None, "storm"), (300, None, "rain"), (501, None, "rain"),
        (601, None, "snow"), (741, None, "fog"), (721, None, "fog"), (781, None, "storm"),
        (800, None, "clear"), (803, None, "clouds"), (None, "Clouds", "clouds"),
        (None, "Mist", "fog"), (999, "Snow", "snow"), (None, "Meteors", None), (True, None, None),
    ],
)  # fmt: skip
def test_openweather_conditions(code, main, condition):
    assert condition_from_openweather(code, main) == condition
    assert condition is None or condition in WEATHER_CONDITIONS


# The cache


def test_refresh_caches_in_redis_for_15_minutes(settings, use_redis_store, redis_client, weather_api):
    configure(settings, weather_api)
    results = refresh_weather(["GB-ENG", "US-CA"])
    assert results["GB-ENG"].condition == "rain" and weather_api.calls == 2
    raw = redis_client.get("tl:v1:weather:GB-ENG")
    assert json.loads(raw) == {"condition": "rain", "temperature_c": 12.3, "observed_at": 1736150400.0}
    assert 895 <= redis_client.ttl("tl:v1:weather:GB-ENG") <= 900
    assert weather_for("GB-ENG", "GB") == WeatherReport("rain", 12.3, 1736150400.0)
    assert weather_api.calls == 2


def test_a_failed_refresh_keeps_the_previous_value(settings, use_redis_store, redis_client, weather_api):
    configure(settings, weather_api)
    refresh_weather(["GB-ENG"])
    weather_api.mode = "error"
    assert refresh_weather(["GB-ENG"]) == {"GB-ENG": None}
    assert json.loads(redis_client.get("tl:v1:weather:GB-ENG"))["condition"] == "rain"


def test_the_request_path_reads_redis_at_most_once_per_memo_period(settings, use_redis_store, redis_client, weather_api):
    configure(settings, weather_api, WEATHER_FETCH_ON_MISS=False)
    refresh_weather(["GB-ENG"])
    redis_client.config_resetstat()
    for _ in range(100):
        assert weather_for("GB-ENG", "GB").condition == "rain"
    assert redis_client.info("commandstats")["cmdstat_get"]["calls"] == 2  # region and country, once
    assert weather_for("FR") is None and weather_for("FR") is None  # misses are memoized too
    assert redis_client.info("commandstats")["cmdstat_get"]["calls"] == 3
    assert weather_api.calls == 1


def test_region_first_then_country(settings, memory_store, weather_api):
    configure(settings, weather_api, WEATHER_FETCH_ON_MISS=False)
    weather_api.payload = {**RAIN, "weather": [{"id": 800, "main": "Clear"}]}
    refresh_weather({"GB": "London,GB"})
    assert weather_for("GB-SCT", "GB").condition == "clear"
    weather_api.payload = RAIN
    refresh_weather(["GB-ENG"])
    assert weather_for("GB-ENG", "GB").condition == "rain"


def test_a_redis_outage_costs_weather_not_the_page(settings, weather_api):
    settings.PERSONALIZATION = {
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": "redis://127.0.0.1:9/0",
    }
    configure(settings, weather_api, WEATHER_FETCH_ON_MISS=False)
    started = time.perf_counter()
    assert weather_for("GB-ENG") is None
    assert time.perf_counter() - started < 0.6


def test_memory_cache_expires():
    now = [0.0]
    cache = MemoryWeatherCache(clock=lambda: now[0])
    cache.set("GB", "x", 900)
    now[0] = 899.0
    assert cache.get_many(["GB", "FR"]) == ["x", None]
    now[0] = 900.0
    assert cache.get_many(["GB"]) == [None]


@pytest.mark.parametrize("raw", [None, "", "{", "[]", '{"condition": "hail"}', b'{"condition": 1}'])
def test_malformed_cached_values_are_ignored(raw):
    assert WeatherReport.from_json(raw) is None


# Fetch on miss


def test_a_miss_fetches_in_the_background_without_waiting(settings, memory_store, weather_api):
    configure(settings, weather_api)
    weather_api.mode = "slow"
    weather_api.delay = 0.2
    started = time.perf_counter()
    assert weather_for("GB-ENG", "GB") is None
    assert time.perf_counter() - started < 0.05  # the request never waits for the API
    wait_for_background_fetches()
    assert weather_api.calls == 1 and weather_api.queries[0]["q"] == "London,GB"
    assert weather_for("GB-ENG", "GB").condition == "rain"
    assert weather_api.calls == 1


def test_only_configured_regions_are_fetched(settings, memory_store, weather_api):
    configure(settings, weather_api)
    assert weather_for("FR-IDF", "FR") is None
    wait_for_background_fetches()
    assert weather_api.calls == 0


def test_fetch_on_miss_can_be_turned_off(settings, memory_store, weather_api):
    configure(settings, weather_api, WEATHER_FETCH_ON_MISS=False)
    assert weather_for("GB-ENG") is None
    time.sleep(0.05)
    assert weather_api.calls == 0


# Settings and the command


def test_parse_regions():
    assert parse_regions(["gb-eng=London,GB", "DE", " "]) == {"GB-ENG": "London,GB", "DE": "DE"}
    assert parse_regions({"US-CA": "34.05,-118.24"}) == {"US-CA": "34.05,-118.24"}
    assert parse_regions(None) == {}


def test_configuration_errors():
    assert configuration_errors({"WEATHER_API_URL": "https://api.example/weather", "WEATHER_REGIONS": ["DE=Berlin,DE"]}) == []
    assert "http(s)" in configuration_errors({"WEATHER_API_URL": "ftp://x"})[0]
    assert "mapping or a list" in configuration_errors({"WEATHER_REGIONS": "DE"})[0]
    assert "ISO 3166" in configuration_errors({"WEATHER_REGIONS": {"London": "London,GB"}})[0]


def test_the_command_refreshes_configured_regions(settings, use_redis_store, redis_client, weather_api):
    configure(settings, weather_api)
    out = io.StringIO()
    call_command("tailored_refresh_weather", stdout=out)
    assert "GB-ENG: rain, 12.3 °C" in out.getvalue() and "refreshed 2 of 2 regions" in out.getvalue()
    assert redis_client.exists("tl:v1:weather:GB-ENG", "tl:v1:weather:US-CA") == 2


def test_the_command_takes_regions_as_arguments(settings, use_redis_store, redis_client, weather_api):
    configure(settings, weather_api)
    out = io.StringIO()
    call_command("tailored_refresh_weather", "--region", "DE=Berlin,DE", "--region", "US-CA", stdout=out)
    assert [query.get("q") or query.get("lat") for query in weather_api.queries] == ["Berlin,DE", "34.05"]
    assert redis_client.exists("tl:v1:weather:DE") == 1


def test_the_command_reports_unavailable_regions(settings, memory_store, weather_api):
    configure(settings, weather_api)
    weather_api.mode = "error"
    out = io.StringIO()
    call_command("tailored_refresh_weather", "--region", "GB-ENG", stdout=out)
    assert "GB-ENG: unavailable" in out.getvalue()


def test_the_command_needs_a_url_and_regions(settings, memory_store, weather_api):
    with pytest.raises(CommandError, match="WEATHER_API_URL"):
        call_command("tailored_refresh_weather")
    configure(settings, weather_api, WEATHER_REGIONS=[])
    with pytest.raises(CommandError, match="No regions"):
        call_command("tailored_refresh_weather")
