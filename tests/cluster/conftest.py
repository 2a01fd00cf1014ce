"""A 3-master Redis Cluster for the session (tests.cluster.servers), and the demo site pointed at
it with 3 event stream shards. The cluster's processes and directory go in the finaliser,
whatever the tests did."""

from __future__ import annotations

import time

import pytest

from tailored import conf, worker
from tests.cluster.servers import LocalCluster
from tests.conftest import DEMO_SETTINGS, TEST_MODEL_DIR

SHARDS = 3


@pytest.fixture(scope="session")
def redis_cluster(request):
    cluster = LocalCluster(masters=3, replicas=0)
    request.addfinalizer(cluster.close)  # before start: a half-started cluster is reaped too
    return cluster.start()


def cluster_settings(cluster: LocalCluster, **overrides) -> dict:
    return {
        **DEMO_SETTINGS,
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": cluster.url,
        "EVENT_STREAM_SHARDS": SHARDS,
        "MODEL_DIR": TEST_MODEL_DIR,
        **overrides,
    }


@pytest.fixture
def on_cluster(settings, redis_cluster):
    """The site's store on the (emptied) cluster with 3 shards; yields the store."""
    redis_cluster.flush()
    settings.PERSONALIZATION = cluster_settings(redis_cluster)
    store = conf.get_profile_store()
    yield store
    store.client.close()


@pytest.fixture
def worker_client(on_cluster, redis_cluster):
    """The stream worker's own cluster client, with the shards' consumer groups created."""
    client = worker.connect(redis_cluster.url, block_ms=0)
    worker.ensure_group(client, worker.Consumer.from_settings("setup").streams)
    yield client
    client.close()


def drain(client, name: str = "cluster-worker", now: float | None = None) -> worker.StepResult:
    """Run one worker over every shard until a turn finds nothing."""
    consumer = worker.Consumer.from_settings(name, block_ms=0)
    total = worker.StepResult()
    while result := worker.process_once(client, consumer, now=time.time() if now is None else now):
        total += result
    return total
