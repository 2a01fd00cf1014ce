"""The profile store's copy of a visitor's CRM traits (issue 20): read with the profile in the
same round trip, replaced whole, kept by the target of a login merge, gone with an erasure."""

from __future__ import annotations

import time

from tailored.core.types import Event
from tailored.profiles.redis import RedisProfileStore

TRAITS = {"loyalty_tier": "gold", "lifetime_orders": 12, "newsletter": True}


def test_traits_are_read_with_the_profile(store):
    now = time.time()
    store.record("v1", [Event("e1", "page_view", ts=now)], now)
    store.set_traits("v1", TRAITS)
    profile = store.get("v1", now)
    assert profile.traits == TRAITS and profile.page_views == 1
    assert store.get_many(["v1", "v2"], now)["v2"].traits == {}


def test_traits_are_kept_for_a_visitor_without_events_and_replaced_whole(store):
    now = time.time()
    store.set_traits("crm-only", TRAITS)
    assert store.get("crm-only", now).traits == TRAITS
    store.set_traits("crm-only", {"loyalty_tier": "silver"})
    assert store.get("crm-only", now).traits == {"loyalty_tier": "silver"}
    store.set_traits("crm-only", {})
    assert store.get("crm-only", now).traits == {}


def test_a_login_merge_keeps_the_targets_traits(store):
    now = time.time()
    store.record("anon", [Event("e1", "page_view", ts=now)], now)
    store.set_traits("anon", {"loyalty_tier": "bronze"})
    store.set_traits("user", {"loyalty_tier": "platinum"})
    store.merge("anon", "user", now)
    merged = store.get("user", now)
    assert merged.traits == {"loyalty_tier": "platinum"} and merged.page_views == 1
    assert store.get("anon", now).traits == {}


def test_export_shows_and_erasure_removes_the_traits(store):
    now = time.time()
    store.set_traits("v1", TRAITS)
    assert store.export("v1", now)["profile"]["traits"] == TRAITS
    store.erase("v1", now)
    assert store.get("v1", now).traits == {}


def test_redis_keeps_traits_under_the_visitors_hash_tag_with_the_retention_ttl(redis_client):
    store = RedisProfileStore(redis_client, retention_seconds=3600)
    store.set_traits("abc", TRAITS)
    assert 0 < redis_client.ttl("tl:v1:{abc}:traits") <= 3600
    now = time.time()
    store.record("abc", [Event("e1", "page_view", ts=now)], now)  # events renew every key's expiry
    assert redis_client.ttl("tl:v1:{abc}:traits") > 3000


def test_redis_reads_traits_in_the_profiles_one_round_trip(redis_client, monkeypatch):
    import redis

    store = RedisProfileStore(redis_client, retention_seconds=3600)
    store.set_traits("abc", TRAITS)
    store.get("abc", time.time())  # the scripts are loaded once per process
    trips: list[str] = []
    execute, command = redis.client.Pipeline.execute, redis.Redis.execute_command
    monkeypatch.setattr(redis.client.Pipeline, "execute", lambda self, *a, **k: trips.append("pipeline") or execute(self, *a, **k))
    monkeypatch.setattr(redis.Redis, "execute_command", lambda self, *a, **k: trips.append(a[0]) or command(self, *a, **k))
    assert store.get("abc", time.time()).traits == TRAITS
    assert trips == ["pipeline"]
