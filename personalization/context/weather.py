"""Current weather per region, for rules and variants tagged by weather.

The request path never calls the weather API. It reads a cache:

    request -> in-process memo (WEATHER_LOCAL_CACHE_SECONDS, default 60 s, misses too)
            -> shared cache: Redis `tl:v1:weather:<region>` (JSON, 15 minutes) with the Redis
               profile store, else an in-process TTL dict; region then country, one round trip

so a web process asks Redis about a region at most once a minute. The cache is filled by
`refresh_weather(regions)`, which `manage.py tailored_refresh_weather` runs (from cron, or
long-running with `--every`). With WEATHER_FETCH_ON_MISS (default on), a miss for a configured
region also starts a background fetch in a daemon thread: the request that missed returns at
once without weather, and later requests get it. That keeps the memory store (no shared cache
across processes) working without cron, at the cost of one API call per process per miss.

Trade-off: a region's first visitors after a cold start get no weather rather than waiting;
weather is up to 15 minutes old. Weather variants are a nicety; page latency is not.

Calls to the API are bounded: a WEATHER_TIMEOUT_SECONDS (0.3 s) timeout on every network phase
plus an overall deadline for the body, and a circuit breaker per process that opens after
WEATHER_BREAKER_FAILURES consecutive failures (timeouts, connection errors, 5xx, 429, garbage
JSON), fails fast for WEATHER_BREAKER_COOLDOWN_SECONDS, then lets one trial call through
(half-open) whose success closes it.

Regions are the Context's ISO 3166-2 region ("US-CA") or its country ("DE"). WEATHER_REGIONS
says where each one's weather is taken: a mapping {"US-CA": "Los Angeles,US", "DE": "52.52,13.40"}
or a list of "KEY=LOCATION" strings (a bare "KEY" is sent as the location itself). A location
is an OpenWeather city query ("City,CC") or "lat,lon".

Note: OpenWeather takes its key as the `appid` query parameter, and httpx logs request URLs at
INFO on the "httpx" logger; keep that logger at WARNING in production so the key stays out of
logs. This module never logs URLs.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import httpx
import redis
from django.core.signals import setting_changed
from django.dispatch import receiver

from tailored import conf
from tailored.core.types import WEATHER_CONDITIONS

logger = logging.getLogger(__name__)

CACHE_PREFIX = "tl:v1:weather:"
MAX_BODY_BYTES = 64 * 1024
MAX_LOCAL_ENTRIES = 4096
MAX_BACKGROUND_FETCHES = 4
LAT_LON = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*\Z")
REGION_KEY = re.compile(r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?\Z")


@dataclass(frozen=True, slots=True)
class WeatherReport:
    """The weather in one region: a condition (WEATHER_CONDITIONS) and the temperature."""

    condition: str
    temperature_c: float | None = None
    observed_at: float | None = None  # epoch seconds, as the provider reports it

    def to_json(self) -> str:
        return json.dumps(
            {
                "condition": self.condition,
                "temperature_c": self.temperature_c,
                "observed_at": self.observed_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> WeatherReport | None:
        """The report in a cached value; None for a missing or malformed one."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("condition") not in WEATHER_CONDITIONS:
            return None
        observed = data.get("observed_at")
        return cls(data["condition"], _temperature(data.get("temperature_c")), _number(observed))


class WeatherProvider(Protocol):
    """Fetches the current weather of a region; None when it cannot (never raises)."""

    def fetch(self, region_key: str) -> WeatherReport | None: ...


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _temperature(value: Any) -> float | None:
    number = _number(value)
    return round(number, 1) if number is not None and -95.0 <= number <= 65.0 else None


# OpenWeather condition groups: https://openweathermap.org/weather-conditions
OPENWEATHER_MAINS = {
    "thunderstorm": "storm", "squall": "storm", "tornado": "storm", "drizzle": "rain",
    "rain": "rain", "snow": "snow", "clear": "clear", "clouds": "clouds", "mist": "fog",
    "fog": "fog", "haze": "fog", "smoke": "fog", "dust": "fog", "sand": "fog", "ash": "fog",
}  # fmt: skip


def condition_from_openweather(code: Any, main: Any = None) -> str | None:
    """Map an OpenWeather condition id (or, failing that, its `main` word) to WEATHER_CONDITIONS."""
    if isinstance(code, int) and not isinstance(code, bool):
        group = code // 100
        if group == 2 or code in (771, 781):  # thunderstorm; squalls and tornadoes
            return "storm"
        if group in (3, 5):  # drizzle, rain
            return "rain"
        if group == 6:
            return "snow"
        if group == 7:  # mist, smoke, haze, dust, fog, sand, ash
            return "fog"
        if code == 800:
            return "clear"
        if group == 8:
            return "clouds"
    return OPENWEATHER_MAINS.get(main.lower()) if isinstance(main, str) else None


def report_from_openweather(payload: Any, now: float) -> WeatherReport | None:
    """A report from an OpenWeather current-weather answer; None if it is not one."""
    if not isinstance(payload, dict):
        return None
    conditions = payload.get("weather")
    first = conditions[0] if isinstance(conditions, list) and conditions else None
    if not isinstance(first, dict):
        return None
    condition = condition_from_openweather(first.get("id"), first.get("main"))
    if condition is None:
        return None
    main = payload.get("main")
    temperature = _temperature(main.get("temp")) if isinstance(main, dict) else None
    return WeatherReport(condition, temperature, _number(payload.get("dt")) or now)


class CircuitBreaker:
    """Closed: calls pass. After `failure_threshold` consecutive failures it opens: calls fail
    fast for `cooldown_seconds`. Then one trial call passes (half-open); its success closes the
    breaker, its failure opens it again. Thread-safe; one per provider per process."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.failure_threshold = max(int(failure_threshold), 1)
        self.cooldown_seconds = float(cooldown_seconds)
        self.clock = clock
        self.state = "closed"
        self.failures = 0
        self._since = 0.0  # when it opened, or when the half-open trial started
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open, only the one trial)."""
        with self._lock:
            if self.state == "closed":
                return True
            # An open breaker past its cool-down, or a trial that never reported back, lets
            # (another) trial through.
            if self.clock() - self._since >= self.cooldown_seconds:
                self.state, self._since = "half-open", self.clock()
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self.state, self.failures = "closed", 0

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.state == "half-open" or self.failures >= self.failure_threshold:
                self.state, self._since = "open", self.clock()


class _Failure(Exception):
    """A failure that counts against the breaker (the service is down, slow or talking nonsense)."""


class OpenWeatherProvider:
    """An OpenWeather-compatible current-weather client (`GET <url>?q=City,CC` or `?lat=&lon=`,
    `appid`, `units=metric`)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        locations: Mapping[str, str] | None = None,
        timeout: float = 0.3,
        breaker: CircuitBreaker | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = url
        self.api_key = api_key
        self.locations = dict(locations or {})
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker()
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False
        )

    def params(self, region_key: str) -> dict[str, str]:
        """Query parameters for a region: its configured location (or the key itself)."""
        location = self.locations.get(region_key) or region_key
        match = LAT_LON.match(location)
        params = {"lat": match[1], "lon": match[2]} if match else {"q": location}
        params["units"] = "metric"
        if self.api_key:
            params["appid"] = self.api_key
        return params

    def fetch(self, region_key: str) -> WeatherReport | None:
        """The region's current weather, or None (failing fast while the breaker is open)."""
        if not self.breaker.allow():
            return None
        try:
            report = self._call(region_key)
        except _Failure as failure:
            self.breaker.record_failure()
            logger.warning("weather for %s unavailable: %s", region_key, failure)
            return None
        except BaseException:
            self.breaker.record_failure()  # never leave a half-open trial unreported
            raise
        self.breaker.record_success()
        return report

    def _call(self, region_key: str) -> WeatherReport | None:
        deadline = time.monotonic() + self.timeout
        try:
            with self.client.stream("GET", self.url, params=self.params(region_key)) as response:
                status = response.status_code
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES or time.monotonic() > deadline:
                        raise _Failure("answer too large or too slow")
        except httpx.HTTPError as error:
            raise _Failure(type(error).__name__) from None
        if status >= 500 or status == 429:
            raise _Failure(f"HTTP {status}")
        if status != 200:
            # The service answered: a bad key or an unknown place is configuration, not an outage.
            logger.warning(
                "weather for %s: HTTP %s (check WEATHER_REGIONS / WEATHER_API_KEY)",
                region_key,
                status,
            )
            return None
        try:
            payload = json.loads(body)
        except ValueError:
            raise _Failure("answer is not JSON") from None
        report = report_from_openweather(payload, time.time())
        if report is None:
            raise _Failure("answer is not a current-weather report")
        return report

    def close(self) -> None:
        self.client.close()


# Caches


class RedisWeatherCache:
    """The shared cache: one JSON string per region, expiring after WEATHER_CACHE_SECONDS.
    Several keys are read with pipelined GETs (one round trip) rather than MGET, which Redis
    Cluster refuses across hash slots."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def get_many(self, keys: list[str]) -> list[str | None]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(CACHE_PREFIX + key)
        return pipe.execute()

    def set(self, key: str, value: str, ttl: float) -> None:
        self.client.set(CACHE_PREFIX + key, value, ex=max(int(ttl), 1))


class MemoryWeatherCache:
    """The same contract in-process, for the memory profile store."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._values: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> list[str | None]:
        now = self.clock()
        with self._lock:
            entries = [self._values.get(key) for key in keys]
        return [entry[1] if entry and entry[0] > now else None for entry in entries]

    def set(self, key: str, value: str, ttl: float) -> None:
        with self._lock:
            if len(self._values) >= MAX_LOCAL_ENTRIES:
                self._values = {k: v for k, v in self._values.items() if v[0] > self.clock()}
            self._values[key] = (self.clock() + ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_memory_cache = MemoryWeatherCache()
# The request path's memo: region key -> (expires at, report or None); plain dict operations
# are atomic, and a lost race only costs one extra cache read.
_local: dict[str, tuple[float, WeatherReport | None]] = {}
_inflight: set[str] = set()
_inflight_lock = threading.Lock()


def weather_cache():
    """Redis when the profile store has a Redis client, else the in-process cache."""
    client = getattr(conf.get_profile_store(), "client", None)
    return (
        RedisWeatherCache(client)
        if client is not None and hasattr(client, "pipeline")
        else _memory_cache
    )


def _setting(name: str, default: Any) -> Any:
    return conf.get_settings().get(name, default)


def parse_regions(value: Mapping[str, Any] | Iterable[str] | None) -> dict[str, str]:
    """Region key -> location from WEATHER_REGIONS or --region values ("KEY", "KEY=LOCATION",
    or a mapping). Keys are upper-cased; a bare key is its own location."""
    if not value:
        return {}
    pairs = (
        value.items()
        if isinstance(value, Mapping)
        else ((item.partition("=")[0], item.partition("=")[2]) for item in value)
    )
    regions = {}
    for key, location in pairs:
        key = str(key).strip().upper()
        if key:
            regions[key] = str(location).strip() if location else key
    return regions


def configured_regions() -> dict[str, str]:
    return parse_regions(_setting("WEATHER_REGIONS", ()))


@cache
def get_provider() -> WeatherProvider | None:
    """The configured provider with its circuit breaker, built once per process; None when
    WEATHER_API_URL is not set."""
    url = _setting("WEATHER_API_URL", None)
    if not url:
        return None
    breaker = CircuitBreaker(
        _setting("WEATHER_BREAKER_FAILURES", 5), _setting("WEATHER_BREAKER_COOLDOWN_SECONDS", 60.0)
    )
    return OpenWeatherProvider(
        url,
        _setting("WEATHER_API_KEY", None),
        configured_regions(),
        timeout=float(_setting("WEATHER_TIMEOUT_SECONDS", 0.3)),
        breaker=breaker,
    )


def refresh_weather(
    regions: Mapping[str, str] | Iterable[str], provider: WeatherProvider | None = None, cache=None
) -> dict[str, WeatherReport | None]:
    """Fetch each region's weather and store what arrived in the shared cache (a failed fetch
    leaves the previous value to expire on its own). Off the request path: cron or a thread."""
    provider = provider or get_provider()
    if provider is None:
        return {}
    regions = parse_regions(regions)
    if isinstance(provider, OpenWeatherProvider):
        provider.locations.update({key: loc for key, loc in regions.items() if loc != key})
    cache = cache or weather_cache()
    ttl = float(_setting("WEATHER_CACHE_SECONDS", 900))
    results: dict[str, WeatherReport | None] = {}
    for key in regions:
        results[key] = report = provider.fetch(key)
        if report is not None:
            try:
                cache.set(key, report.to_json(), ttl)
            except redis.RedisError as error:
                logger.warning("cannot cache weather for %s: %s", key, error)
    return results


def weather_for(*region_keys: str | None) -> WeatherReport | None:
    """The cached weather of the first of `region_keys` (e.g. region, then country) that has
    one. Request path: at most one cache read per region per WEATHER_LOCAL_CACHE_SECONDS, and
    never an API call (a miss may start a background fetch)."""
    keys = [key for key in region_keys if key and REGION_KEY.match(key)]
    now = time.monotonic()
    cached = [_local.get(key) for key in keys]
    missing = [
        key for key, entry in zip(keys, cached, strict=True) if entry is None or entry[0] <= now
    ]
    if missing:
        _read_shared(missing, now)
    for key in keys:
        entry = _local.get(key)
        if entry is not None and entry[1] is not None:
            return entry[1]
    if missing and _setting("WEATHER_FETCH_ON_MISS", True):
        _fetch_in_background(missing)
    return None


def _read_shared(keys: list[str], now: float) -> None:
    try:
        values = weather_cache().get_many(keys)
    except redis.RedisError:
        # The page renders without weather (and retries after the memo period).
        values = [None] * len(keys)
    if len(_local) >= MAX_LOCAL_ENTRIES:
        _local.clear()
    expires = now + float(_setting("WEATHER_LOCAL_CACHE_SECONDS", 60))
    for key, raw in zip(keys, values, strict=True):
        _local[key] = (expires, WeatherReport.from_json(raw))


def _fetch_in_background(keys: list[str]) -> None:
    """Start one daemon thread fetching the configured regions among `keys` (not already being
    fetched, and at most MAX_BACKGROUND_FETCHES at a time)."""
    regions = configured_regions()
    with _inflight_lock:
        wanted = [key for key in keys if key in regions and key not in _inflight]
        if not wanted or len(_inflight) >= MAX_BACKGROUND_FETCHES:
            return
        _inflight.update(wanted)
    thread = threading.Thread(
        target=_background_refresh, args=(wanted,), name="tailored-weather", daemon=True
    )
    thread.start()


def _background_refresh(keys: list[str]) -> None:
    try:
        results = refresh_weather(keys)
        expires = time.monotonic() + float(_setting("WEATHER_LOCAL_CACHE_SECONDS", 60))
        for key, report in results.items():
            if report is not None:
                _local[key] = (expires, report)
    except Exception:
        logger.exception("background weather refresh failed")
    finally:
        with _inflight_lock:
            _inflight.difference_update(keys)


def reset() -> None:
    """Forget the provider (and its breaker) and every in-process cached value."""
    provider = get_provider() if get_provider.cache_info().currsize else None
    get_provider.cache_clear()
    if isinstance(provider, OpenWeatherProvider):
        provider.close()
    _local.clear()
    _memory_cache.clear()


def configuration_errors(settings: Mapping[str, Any] | None = None) -> list[str]:
    """What is wrong with the weather settings, for a system check (empty when fine)."""
    settings = conf.get_settings() if settings is None else settings
    url = settings.get("WEATHER_API_URL")
    errors = []
    if url and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        errors.append("WEATHER_API_URL must be an http(s) URL.")
    regions = settings.get("WEATHER_REGIONS") or ()
    if isinstance(regions, str) or not isinstance(regions, Mapping | list | tuple):
        errors.append("WEATHER_REGIONS must be a mapping or a list of 'KEY=LOCATION' strings.")
    else:
        bad = [key for key in parse_regions(regions) if not REGION_KEY.match(key)]
        if bad:
            errors.append(
                f"WEATHER_REGIONS keys must be ISO 3166 codes like 'DE' or 'US-CA': {bad}"
            )
    return errors


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "PERSONALIZATION":
        reset()
