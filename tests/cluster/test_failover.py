"""Failover (issue 19 item 3): on a 3-master, 3-replica cluster a master is killed mid-ingest. Its
replica is promoted; meanwhile pages render (fallbacks) without a 5xx, the events API answers 503
rather than 202 for what it could not append, ingestion resumes, and what was accepted and not
stored afterwards is counted and reported (asynchronous replication may lose a master's last
writes)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
import redis

from tailored.core.types import Event
from tailored.events.stream import stream_key, visitor_stream
from tailored.models import Event as EventRow
from tailored.profiles.redis import visitor_keys
from tests.cluster.conftest import SHARDS, cluster_settings, drain
from tests.cluster.servers import LocalCluster
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

BEFORE_KILL_SECONDS = 1.0
AFTER_RECOVERY_SECONDS = 1.5
MAX_SECONDS = 30.0


@pytest.fixture(scope="module")
def replicated_cluster(request):
    cluster = LocalCluster(masters=3, replicas=1, prefix="tailored-failover-")
    request.addfinalizer(cluster.close)  # before start: a half-started cluster is reaped too
    cluster.start()
    cluster.wait_replicas()
    return cluster


def test_an_entry_that_could_not_be_appended_marks_nothing(on_cluster):
    """The invariant behind "never 202 without a stream entry": the dedup marks (which make a
    resent batch a duplicate) are written only after the entry is in."""
    store, visitor = on_cluster, uuid.uuid4().hex
    events = [Event("w-1", "page_view", time.time(), category="books")]
    store.client.set(visitor_stream(visitor, SHARDS), "not a stream")  # XADD fails on its shard
    with pytest.raises(redis.ResponseError):
        store.record(visitor, events, time.time())
    assert not store.client.hgetall(visitor_keys(visitor)["ids"])  # nothing marked

    store.client.delete(visitor_stream(visitor, SHARDS))
    assert len(store.record(visitor, events, time.time()).stored) == 1  # the resend is stored, not a duplicate
    assert store.client.xlen(visitor_stream(visitor, SHARDS)) == 1


def post(client, visitor: str, ids: list[str]) -> int:
    consent_cookies(client, visitor)
    now_ms = int(time.time() * 1000)
    events = [{"type": "page_view", "id": event_id, "ts": now_ms, "category": "books"} for event_id in ids]
    return client.post("/api/events", data=json.dumps({"events": events}), content_type="application/json").status_code


class Load:
    """Batches and page views, one after another, while the cluster fails over."""

    def __init__(self, cluster: LocalCluster):
        self.cluster = cluster
        self.visitors = [uuid.uuid4().hex for _ in range(30)]
        self.api, self.pages = Counter(), Counter()
        self.accepted: list[str] = []
        self.accepted_after_recovery = 0
        self.killed_at = self.recovered_at = self.resumed_at = None

    def run(self, client, victim: int) -> None:
        started, n = time.monotonic(), 0
        while time.monotonic() - started < MAX_SECONDS:
            now = time.monotonic()
            if self.killed_at is None and now - started > BEFORE_KILL_SECONDS:
                self.cluster.kill(victim)
                self.killed_at = now
            if self.killed_at is not None and self.recovered_at is None and n % 10 == 0 and self._recovered(victim):
                self.recovered_at = time.monotonic()
            if self.recovered_at is not None and now - self.recovered_at > AFTER_RECOVERY_SECONDS:
                return
            self._one(client, n)
            n += 1

    def _one(self, client, n: int) -> None:
        visitor = self.visitors[n % len(self.visitors)]
        ids = [f"{visitor[:8]}-{n}-{i}" for i in range(5)]
        status = post(client, visitor, ids)
        self.api[status] += 1
        if status == 202:
            self.accepted += ids
            self.accepted_after_recovery += self.recovered_at is not None
            if self.killed_at is not None and self.resumed_at is None and self.api[503]:
                self.resumed_at = time.monotonic()  # the first 202 after the kill's first 503
        if n % 5 == 0:
            consent_cookies(client, visitor)
            self.pages[client.get("/").status_code] += 1

    def _recovered(self, victim: int) -> bool:
        """The victim's replica serves its slots and the cluster says ok."""
        try:
            if self.cluster.master_of(stream_key(0, SHARDS)) == victim:
                return False
            self.cluster.wait_ok(timeout=0.01)
            return True
        except (RuntimeError, redis.RedisError):
            return False


def test_killing_a_master_mid_ingest(client, settings, replicated_cluster, record_property):
    replicated_cluster.flush()
    settings.PERSONALIZATION = cluster_settings(replicated_cluster, REDIS_BREAKER_COOLDOWN_SECONDS=0.5)
    victim = replicated_cluster.master_of(stream_key(0, SHARDS))  # a shard's master, and visitors' keys
    load = Load(replicated_cluster)

    load.run(client, victim)

    assert load.recovered_at is not None, "the replica was not promoted"
    from tailored import worker

    drainer = worker.connect(replicated_cluster.url, block_ms=0)
    try:
        worker.ensure_group(drainer, worker.Consumer.from_settings("setup").streams)
        drain(drainer)
    finally:
        drainer.close()
    stored = set(EventRow.objects.filter(event_id__in=load.accepted).values_list("event_id", flat=True))
    lost = len(set(load.accepted) - stored)
    window = load.recovered_at - load.killed_at
    resumed = load.resumed_at - load.killed_at if load.resumed_at else float("nan")
    report = (f"replica promoted {window:.1f} s after the kill, first 202 after {resumed:.1f} s; "
              f"API {dict(load.api)}; pages {dict(load.pages)}; "
              f"accepted {len(load.accepted)} events, stored {len(stored)}, lost {lost}")
    print(report)
    record_property("failover", report)

    assert not [status for status in load.pages if status >= 500]  # pages fell back, never failed
    assert set(load.api) <= {202, 503}  # a batch not appended is a 503 (the tracker resends it)
    assert load.accepted_after_recovery > 0  # ingestion resumed
    # Replication is asynchronous: a master killed between acknowledging an append and sending it
    # to its replica loses it. Measured 0 in every run here (README "Redis Cluster"); a few
    # batches are allowed so the test measures rather than flakes.
    assert lost <= 25, report
