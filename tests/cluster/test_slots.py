"""Every Redis path beside the profile store, run on the 3-master cluster with 3 visitor shards:
no script or multi-key command may span two slots (CROSSSLOT), and the sharded counters add up
to what one Redis would count (issue 19 item 1)."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db.models import Sum

from tailored import fragments, holdout, seen_items, worker
from tailored.activation import triggers
from tailored.core.types import Event, Snapshot
from tailored.experiments import counting
from tailored.insights import counting as insights
from tailored.models import InsightHour
from tailored.sharding import shard_of
from tests.cluster.conftest import SHARDS, drain
from tests.helpers import HOME_BLOCK

pytestmark = pytest.mark.django_db

NOW = time.time()


def visitors(n: int) -> list[str]:
    """n visitors spread evenly over the shards (random ids alone miss one shard in about one
    run of 13 for 9 visitors over 3 shards)."""
    by_shard: dict[int, list[str]] = {shard: [] for shard in range(SHARDS)}
    while sum(map(len, by_shard.values())) < n:
        visitor = uuid.uuid4().hex
        shard = shard_of(visitor, SHARDS)
        if len(by_shard[shard]) < -(-n // SHARDS):
            by_shard[shard].append(visitor)
    return [visitor for group in by_shard.values() for visitor in group]


def test_experiment_counters_shard_by_visitor_and_flush_every_shard(on_cluster):
    backend = counting.counters()
    assert isinstance(backend, counting.ShardedRedisCounters)
    people = visitors(12)
    for n, visitor in enumerate(people):
        assert backend.expose("hero-test", "a" if n % 2 else "b", visitor, NOW, x=1)
        assert not backend.expose("hero-test", "a", visitor, NOW)  # the first exposure wins
    assert backend.convert("hero-test", "purchase", people[0], NOW + 1, NOW + 1)
    assert backend.exposed_arm("hero-test", people[1]) == "a"
    pending = backend.pending("hero-test")
    assert sum(value for (_, _, goal, stat), value in pending.items() if stat == "n") == 12
    assert sorted(backend.exposed_visitors("hero-test")) == sorted(people)

    rows: list[tuple] = []
    written = counting.flush_key("hero-test", backend, lambda *row: rows.append(row))
    assert written == len(rows) and sum(stats.get("n", 0) for *_, stats in rows) == 12
    assert counting.flush_key("hero-test", backend, lambda *row: rows.append(row)) == 0  # nothing twice

    backend.forget(people[0], [("hero-test", ["purchase"])])
    assert backend.exposed_arm("hero-test", people[0]) is None
    assert backend.expire("hero-test", ["purchase"], NOW + 10) == 11
    backend.reset("hero-test", ["purchase"])
    assert backend.exposed_visitors("hero-test") == []


def test_the_unsharded_counters_work_on_a_cluster_too(on_cluster):
    backend = counting.RedisCounters(on_cluster.client)  # EVENT_STREAM_SHARDS = 1: one slot per experiment
    assert backend.expose("solo", "a", "v1", NOW) and backend.convert("solo", "signup", "v1", NOW, NOW)
    assert backend.take("solo") is not None
    backend.reset("solo", ["signup"])


def test_holdout_and_experiment_version_key(on_cluster, personalization):
    personalization(GLOBAL_HOLDOUT_PERCENT=50)
    assert holdout.note_exposure("h1", holdout.HOLDOUT, NOW)
    assert holdout.flush(counting.counters()) >= 1
    holdout.forget_visitor("h1")


def test_insight_counters_shard_by_visitor_and_flush_every_shard(client, on_cluster, worker_client):
    insights.flush_clock.reset()
    people = visitors(9)
    for n, visitor in enumerate(people):
        impression = Event(f"i-{n}", "impression", NOW, url="/", attrs={"block": HOME_BLOCK, "variant": "fallback", "page": 3, "seconds": 1})
        on_cluster.record(visitor, [impression], NOW, Snapshot(device="mobile", country="DE"))
    drain(worker_client, now=NOW)
    assert insights.flush(worker_client) >= 0  # whatever the loop's own flush left
    counted = InsightHour.objects.filter(page_id=3, segment="").aggregate(i=Sum("impressions"), u=Sum("viewers"))
    assert counted == {"i": 9, "u": 9}  # the shards' unique viewers add up: disjoint visitors


def test_activation_states_schedules_and_leases(on_cluster, worker_client):
    triggers.write_states(worker_client, {"ann": {1: True}, "ben": {1: False}})
    loaded = type("L", (), {"spec": type("S", (), {"id": 1})()})()
    assert triggers.read_states(worker_client, ["ann", "ben"], [loaded]) == {"ann": {1: True}, "ben": {1: False}}
    worker_client.zadd(triggers.DUE_KEY, {"999|ann|": NOW - 1})
    assert triggers.fire_due(worker_client, NOW) == 0  # claimed and released (no such trigger)
    assert triggers.forget("ann") >= 1


def test_cart_watch_scripts_in_a_cluster_pipeline(on_cluster, worker_client):
    entries = [
        worker.DecodedEntry("1-0", "cat", [Event("c1", "add_to_cart", NOW - 7200, item="5")]),
        worker.DecodedEntry("2-0", "dog", [Event("d1", "add_to_cart", NOW - 7200, item="6"), Event("d2", "purchase", NOW - 7100)]),
    ]
    worker.watch_carts(worker_client, entries, delay_seconds=60)
    assert worker_client.zscore(worker.CART_WATCH_KEY, "cat") is not None
    assert worker.fire_due_carts(worker_client, NOW) == 0  # no subscriber: claimed, released


def test_caches_and_seen_items(on_cluster):
    keys = [fragments.fragment_key(page, 1, "v") for page in (1, 2, 3, 4)]  # four pages, four slots
    for key in keys:
        fragments.put(key, f"<p>{key}</p>")
    assert fragments.get_many(keys) == {key: f"<p>{key}</p>" for key in keys}
    assert fragments.invalidate_page(2) == 1
    assert seen_items.add({"eve": {"7": NOW}, "fay": {"8": NOW}}) == 2
    assert seen_items.get("eve") == frozenset({"7"})
    seen_items.forget("eve")
    assert seen_items.get("eve") == frozenset()
