"""An experiment's or the holdout's goals change: the conversion sets of the former goals still
hold ids, and erasure, retention and reset must clean them too (every backend; over HTTP with the
session's real Redis)."""

from __future__ import annotations

import json
import time

import pytest

from tailored.experiments import counting
from tailored.experiments.counting import MemoryCounters, RedisCounters, ShardedRedisCounters
from tailored.holdout import HOLDOUT_KEY
from tailored.management.commands.tailored_purge import purge_live_data
from tests.helpers import consent_cookies

from .conftest import make_experiment, running, visitor_in

pytestmark = pytest.mark.django_db

NOW = 1_790_000_000.0
VARIANT_ARMS = [("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})]


@pytest.fixture(params=["memory", "redis", "sharded"])
def backend(request):
    if request.param == "memory":
        return MemoryCounters()
    client = request.getfixturevalue("redis_client")
    return RedisCounters(client) if request.param == "redis" else ShardedRedisCounters(client, 4)


def converted_on_click(backend, visitor: str = "v1") -> None:
    assert backend.expose("t", "b", visitor, NOW)
    assert backend.convert("t", "click", visitor, NOW, NOW)


def counts_again(backend, visitor: str = "v1") -> bool:
    """Whether the visitor, exposed anew, converts on click again: only if no set still holds them."""
    backend.expose("t", "b", visitor, NOW + 60)
    return backend.convert("t", "click", visitor, NOW + 60, NOW + 60)


def test_forget_takes_the_id_out_of_a_former_goals_set(backend):
    converted_on_click(backend)
    converted_on_click(backend, "v2")
    backend.forget("v1", [("t", ["purchase"])])  # the goal is purchase now
    assert backend.exposed_arm("t", "v1") is None
    assert counts_again(backend)
    assert not counts_again(backend, "v2")  # someone else's membership stays


def test_retention_expires_memberships_of_a_former_goal(backend):
    converted_on_click(backend)
    assert backend.expire("t", ["purchase"], before=NOW + 1) == 1
    assert counts_again(backend)


def test_reset_drops_a_former_goals_set(backend, request):
    converted_on_click(backend)
    backend.reset("t", ["purchase"])
    assert counts_again(backend)
    if not isinstance(backend, MemoryCounters):
        backend.reset("t", ["purchase"])
        assert list(request.getfixturevalue("redis_client").scan_iter(match="tl:v1:xp:*")) == []


def test_the_export_lists_conversions_of_former_goals(backend):
    converted_on_click(backend)
    held = backend.export("v1", [("t", ["purchase"]), ("other", ["click"])])
    assert held == {"t": {"arm": "b", "exposed_at": NOW, "covariate": 0, "conversions": ["click"]}}
    assert backend.export("v2", [("t", ["click"])]) == {}


def test_sets_written_before_the_goal_registry_are_registered_by_retention_once(redis_client):
    backend = RedisCounters(redis_client)
    backend.expose("t", "b", "v1", NOW)
    redis_client.sadd("tl:v1:xp:{t}:conv:click", "v1")  # as before the registry: no goals key
    redis_client.sadd("tl:v1:xp:{ab12}:t:conv:signup", "v1")  # a sharded one
    assert not redis_client.exists("tl:v1:xp:{t}:goals")

    backend.expire("t", ["purchase"], before=NOW - 1)  # the daily purge: nobody is old enough
    assert redis_client.smembers("tl:v1:xp:{t}:goals") == {"click"}
    assert redis_client.smembers("tl:v1:xp:{ab12}:t:goals") == {"signup"}
    backend.forget("v1", [("t", ["purchase"])])
    assert not redis_client.exists("tl:v1:xp:{t}:conv:click")
    assert counting.register_legacy_goals(redis_client) == 0  # once per Redis


# -- Through the site ------------------------------------------------------------------------------


@pytest.fixture
def converted(client, use_redis_store, redis_client, personalization):
    """A visitor exposed (a page view) to an experiment and the holdout, converted on add_to_cart
    (the events API), whose goals then change to purchase."""
    personalization(GLOBAL_HOLDOUT_PERCENT=50, GLOBAL_HOLDOUT_GOALS=["add_to_cart"])
    experiment = make_experiment(arms=VARIANT_ARMS, goals="add_to_cart")
    visitor = visitor_in(running("hero-test"), "electronics")
    consent_cookies(client, visitor)
    assert client.get("/").status_code == 200
    body = {"events": [{"type": "add_to_cart", "id": "c1", "product_id": 41, "ts": int(time.time() * 1000)}]}
    assert client.post("/api/events", json.dumps(body), content_type="application/json").status_code == 202
    sets = ("tl:v1:xp:{hero-test}:conv:add_to_cart", f"tl:v1:xp:{{{HOLDOUT_KEY}}}:conv:add_to_cart")
    assert all(redis_client.sismember(name, visitor) for name in sets)
    experiment.goals = "purchase"
    experiment.save()
    personalization(GLOBAL_HOLDOUT_GOALS=["purchase"])
    return experiment, visitor, sets


def test_erasure_cleans_the_conversion_sets_of_former_goals(client, redis_client, converted):
    _, visitor, sets = converted
    assert client.delete("/api/me").status_code == 200
    assert redis_client.hget("tl:v1:xp:{hero-test}:exposed", visitor) is None
    assert not any(redis_client.sismember(name, visitor) for name in sets)
    assert redis_client.hgetall("tl:v1:xp:{hero-test}:hours")  # the counts hold no id: they stay


def test_the_daily_purge_and_deleting_the_experiment_clean_former_goals(redis_client, converted):
    experiment, visitor, (experiment_set, holdout_set) = converted
    purge_live_data(time.time() + 100 * 86400)  # everyone's exposure is past retention
    assert not redis_client.sismember(experiment_set, visitor)
    assert not redis_client.sismember(holdout_set, visitor)

    redis_client.sadd(experiment_set, "someone")
    experiment.delete()
    assert not redis_client.exists(experiment_set, "tl:v1:xp:{hero-test}:goals")
