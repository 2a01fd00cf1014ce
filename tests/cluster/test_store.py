"""The Redis profile store on a real 3-master Redis Cluster (issue 19): the same contract as on
one Redis, every script and multi-key command within one slot."""

from __future__ import annotations

import time

from tailored import redis_guard
from tailored.core.types import Event, Snapshot
from tailored.events.stream import stream_key, stream_keys, visitor_stream
from tailored.profiles.redis import visitor_keys
from tailored.sharding import shard_of

NOW = time.time()


def views(prefix: str, n: int, category: str = "books", start: float = NOW) -> list[Event]:
    return [Event(f"{prefix}-{i}", "page_view", start + i, category=category, item=str(i)) for i in range(n)]


def test_the_site_gets_a_guarded_cluster_client(on_cluster):
    assert isinstance(on_cluster.client, redis_guard.GuardedRedisCluster)
    assert on_cluster.shards == 3
    assert on_cluster.ping()


def test_record_get_get_many_export_merge_and_erase_round_trip(on_cluster, redis_cluster):
    store = on_cluster
    snapshot = Snapshot(device="mobile", country="DE", segments=frozenset({"readers"}))
    assert len(store.record("ada", views("a", 4), NOW, snapshot).stored) == 4
    assert len(store.record("bob", views("b", 2, "garden"), NOW, snapshot).stored) == 2
    assert store.record("ada", views("a", 4), NOW).duplicates == 4  # dedup on the visitor's slot

    ada = store.get("ada", NOW)
    assert (ada.page_views, ada.category_views, ada.last_country) == (4, {"books": 4}, "DE")
    both = store.get_many(["ada", "bob", "nobody"], NOW)
    assert [both[v].page_views for v in ("ada", "bob", "nobody")] == [4, 2, 0]
    assert store.export("ada", NOW)["profile"]["page_views"] == 4
    assert set(store.recent_visitors(0, 10)) == {"ada", "bob"}
    assert store.segment_sizes("readers", 1, NOW)[-1][1] == 2

    store.merge("ada", "bob", NOW)  # two visitors, two slots: a split pipeline, no transaction
    bob = store.get("bob", NOW)
    assert (bob.page_views, bob.category_views) == (6, {"books": 4, "garden": 2})
    assert store.get("ada", NOW).page_views == 0

    erased = store.erase("bob", NOW)
    assert erased["profile_keys"] > 0 and erased["stream_entries"] == 1  # bob's own batch
    assert store.get("bob", NOW).page_views == 0
    assert not store.client.exists(*visitor_keys("bob").values())
    assert "bob" not in store.recent_visitors(0, 10)


def test_a_visitors_batches_go_to_their_shard_in_order(on_cluster, redis_cluster):
    store = on_cluster
    for batch in range(5):
        store.record("carol", views(f"c{batch}", 3, start=NOW + batch * 10), NOW + batch)
    mine = visitor_stream("carol", 3)
    entries = store.client.xrange(mine)
    assert [fields["v"] for _, fields in entries] == ["carol"] * 5
    assert [fields["e"].count('"id":"c') for _, fields in entries] == [3] * 5
    order = [event_id for _, fields in entries for event_id in _ids(fields["e"])]
    assert order == [f"c{b}-{i}" for b in range(5) for i in range(3)]
    others = [key for key in stream_keys(3) if key != mine]
    assert all(store.client.xlen(key) == 0 for key in others)


def test_shards_spread_over_the_three_masters(on_cluster, redis_cluster):
    assert len({redis_cluster.master_of(stream_key(shard, 3)) for shard in range(3)}) == 3
    # 300 visitors fall into every shard, about a third each.
    counts = [0, 0, 0]
    for n in range(300):
        counts[shard_of(f"visitor-{n}", 3)] += 1
    assert min(counts) > 70


def test_the_rate_limit_and_purge_run_on_the_cluster(on_cluster, personalization):
    personalization(RATE_LIMIT_PER_MINUTE=5)
    from tailored import conf

    store = conf.get_profile_store()
    assert not store.record("dan", views("d", 4), NOW).rate_limited
    assert store.record("dan", views("e", 4), NOW).rate_limited
    assert set(store.purge(NOW)) == {"stream entries", "dead letters", "tombstones", "profiles", "segment days"}


def test_scripts_are_loaded_again_when_a_node_forgets_them(on_cluster, redis_cluster):
    store = on_cluster
    store.record("erin", views("f", 2), NOW)
    for port in redis_cluster.ports:  # as after a failover to a replica that never saw SCRIPT LOAD
        redis_cluster_client(port).script_flush()
    store.record("erin", views("g", 2), NOW)
    assert store.get("erin", NOW).page_views == 4


def redis_cluster_client(port: int):
    import redis

    return redis.Redis(port=port, decode_responses=True)


def _ids(raw: str) -> list[str]:
    import json

    return [event["id"] for event in json.loads(raw)]


def test_a_shard_count_that_is_not_a_whole_number_is_e011(settings):
    from tailored.checks import check_redis_cluster

    for bad in (0, "3", 2.0, True):
        settings.PERSONALIZATION = {"EVENT_STREAM_SHARDS": bad}
        assert [e.id for e in check_redis_cluster(None)] == ["tailored.E011"]
    settings.PERSONALIZATION = {"EVENT_STREAM_SHARDS": 3}
    assert check_redis_cluster(None) == []


def test_cluster_urls_name_every_node_and_the_credentials(redis_cluster):
    from redis.cluster import RedisCluster

    assert redis_guard.is_cluster("redis+cluster://a:1,b:2") and not redis_guard.is_cluster("redis://a:1/0")
    assert redis_guard.is_cluster("redis://a:1/0", {"REDIS_CLUSTER": True})
    host_ports = redis_cluster.url[len("redis+cluster://"):]
    client = redis_guard.cluster_from_url(f"redis+cluster://default:@{host_ports}", decode_responses=True)
    try:
        assert isinstance(client, RedisCluster) and len(client.get_primaries()) == 3
    finally:
        client.close()
    one_node = redis_guard.cluster_from_url(f"redis://127.0.0.1:{redis_cluster.ports[0]}/0", decode_responses=True)
    try:
        assert len(one_node.get_primaries()) == 3  # discovered from one node (REDIS_CLUSTER = True)
    finally:
        one_node.close()
