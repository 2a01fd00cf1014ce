"""A hung or dead Redis costs a page at most one timeout; pages after it skip Redis until a
background probe finds it back, and then personalization returns (issue 14 item 1).

Each test runs its own redis-server (tests/redis_server.py) and pauses or kills it."""

from __future__ import annotations

import time

import pytest

from tests.helpers import ELECTRONICS_HERO, FALLBACK_HERO, consent_cookies, make_fan
from tests.redis_server import guarded_settings, own_redis  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

FAN = "e" * 32
# Long enough that "the page waited a timeout" and "it did not" cannot be confused.
TIMEOUT = 2.0


def _page(client) -> tuple[str, float]:
    started = time.monotonic()
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode(), time.monotonic() - started


def _connections(server_client) -> int:
    return int(server_client.info("stats")["total_connections_received"])


def _personalized_within(client, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ELECTRONICS_HERO in _page(client)[0]:
            return True
        time.sleep(0.1)
    return False


def test_a_hung_redis_costs_only_the_first_page_one_timeout(client, settings, own_redis):  # noqa: F811
    settings.PERSONALIZATION = guarded_settings(
        own_redis, REDIS_SOCKET_TIMEOUT_SECONDS=TIMEOUT, REDIS_BREAKER_COOLDOWN_SECONDS=300
    )
    make_fan(FAN)
    consent_cookies(client, FAN)
    assert ELECTRONICS_HERO in _page(client)[0]  # warm: scripts loaded, fragments cached
    watcher = own_redis.client()
    before = _connections(watcher)

    own_redis.pause()
    first, first_seconds = _page(client)
    later = [_page(client) for _ in range(4)]
    own_redis.resume()

    # Every page still renders, with what an anonymous visitor would see.
    assert FALLBACK_HERO in first and ELECTRONICS_HERO not in first
    assert all(FALLBACK_HERO in html for html, _ in later)
    # Only the first page waited (one timeout, not one per Redis call of the page)...
    assert TIMEOUT <= first_seconds < 2 * TIMEOUT
    assert all(seconds < TIMEOUT for _, seconds in later), [round(s, 2) for _, s in later]
    # ...and the later pages did not even connect to Redis (a timed-out connection is dropped,
    # so every page that tried would have opened a new one, queued while Redis was paused).
    time.sleep(0.2)
    assert _connections(watcher) == before


def test_personalization_returns_once_a_hung_redis_answers_again(client, settings, own_redis):  # noqa: F811
    settings.PERSONALIZATION = guarded_settings(
        own_redis, REDIS_SOCKET_TIMEOUT_SECONDS=TIMEOUT, REDIS_BREAKER_COOLDOWN_SECONDS=0.5
    )
    make_fan(FAN)
    consent_cookies(client, FAN)
    assert ELECTRONICS_HERO in _page(client)[0]
    own_redis.pause()
    assert FALLBACK_HERO in _page(client)[0]
    time.sleep(1.0)  # the cool-down passes: the probe runs in the background, not in a page
    html, seconds = _page(client)
    assert FALLBACK_HERO in html and seconds < TIMEOUT
    own_redis.resume()
    assert _personalized_within(client, 10.0)


def test_pages_survive_a_killed_redis_and_personalize_after_its_restart(client, settings, own_redis):  # noqa: F811
    settings.PERSONALIZATION = guarded_settings(own_redis, REDIS_BREAKER_COOLDOWN_SECONDS=0.5)
    make_fan(FAN)
    consent_cookies(client, FAN)
    assert ELECTRONICS_HERO in _page(client)[0]
    own_redis.kill()
    pages = [_page(client)[0] for _ in range(3)]
    assert all(FALLBACK_HERO in html for html in pages)
    own_redis.start()  # same port, same append-only file: the profile is still there
    assert _personalized_within(client, 10.0)


def test_with_a_tolerant_breaker_the_request_budget_still_limits_a_page_to_one_timeout(client, settings, own_redis):  # noqa: F811
    # The breaker opens only after five failures, so it is the per-request budget that makes the
    # rest of the page skip Redis after its first timeout (the profile read, then the fragment
    # cache, experiment and holdout counters would each have waited otherwise).
    settings.PERSONALIZATION = guarded_settings(
        own_redis, REDIS_SOCKET_TIMEOUT_SECONDS=TIMEOUT, REDIS_BREAKER_FAILURES=5, REDIS_BREAKER_COOLDOWN_SECONDS=300
    )
    make_fan(FAN)
    consent_cookies(client, FAN)
    assert ELECTRONICS_HERO in _page(client)[0]
    own_redis.pause()
    html, seconds = _page(client)
    own_redis.resume()
    assert FALLBACK_HERO in html
    assert TIMEOUT <= seconds < 2 * TIMEOUT


def test_fragments_are_cached_in_the_process_while_redis_is_away(settings, own_redis):  # noqa: F811
    from tailored import fragments

    settings.PERSONALIZATION = guarded_settings(own_redis, REDIS_BREAKER_COOLDOWN_SECONDS=0.2)
    key = fragments.fragment_key(1, 7, "hero")
    own_redis.kill()
    assert fragments.get(key) is None  # the first failure opens the breaker
    fragments.put(key, "<h1>rendered during the outage</h1>")
    assert fragments.get(key) == "<h1>rendered during the outage</h1>"  # not rendered again
    own_redis.start()
    deadline = time.monotonic() + 5
    while fragments.get(key) is not None:  # back to Redis (which has no such fragment) ...
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert not fragments.CACHE.outage  # ... and the outage copies are gone
