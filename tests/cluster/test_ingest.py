"""Ingestion over HTTP into a 3-master cluster with 3 stream shards, then `tailored_worker`'s loop
stores every event (issue 19 items 1 and 2)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tailored.events.stream import CONSUMER_GROUP, stream_keys, visitor_stream
from tailored.models import Event as EventRow
from tests.cluster.conftest import SHARDS, drain
from tests.cluster.test_slots import visitors as spread_visitors
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db


def post_batch(client, visitor_id: str, prefix: str, n: int, start_ms: int) -> int:
    consent_cookies(client, visitor_id)
    events = [
        {"type": "page_view", "id": f"{prefix}-{i}", "ts": start_ms + i, "category": "books", "product_id": i + 1}
        for i in range(n)
    ]
    return client.post("/api/events", data=json.dumps({"events": events}), content_type="application/json").status_code


def test_http_batches_reach_every_shard_and_the_worker_stores_them_all(client, on_cluster, worker_client):
    visitors = spread_visitors(24)
    now_ms = int(time.time() * 1000)
    statuses = [post_batch(client, visitor, f"{visitor[:6]}-{b}", 4, now_ms + b * 10) for visitor in visitors for b in range(2)]
    assert set(statuses) == {202}
    lengths = [on_cluster.client.xlen(stream) for stream in stream_keys(SHARDS)]
    assert sum(lengths) == 48 and all(lengths)  # every shard took some of the batches

    result = drain(worker_client)

    assert (result.entries, result.events) == (48, 192)
    assert EventRow.objects.filter(visitor_id__in=visitors).count() == 192
    for stream in stream_keys(SHARDS):  # acknowledged and deleted on its own shard
        assert worker_client.xlen(stream) == 0
        assert worker_client.xpending(stream, CONSUMER_GROUP)["pending"] == 0
    assert on_cluster.get(visitors[0], time.time()).page_views == 8  # the profile, on its own slot


def test_one_visitors_events_stay_in_order_through_the_worker(client, on_cluster, worker_client):
    visitor = uuid.uuid4().hex
    now_ms = int(time.time() * 1000)
    for batch in range(6):
        assert post_batch(client, visitor, f"o{batch}", 3, now_ms + batch * 100) == 202
    entries = worker_client.xrange(visitor_stream(visitor, SHARDS))
    sent = [event["id"] for _, fields in entries for event in json.loads(fields["e"])]
    assert sent == [f"o{b}-{i}" for b in range(6) for i in range(3)]

    drain(worker_client)

    stored = list(EventRow.objects.filter(visitor_id=visitor).order_by("pk").values_list("event_id", flat=True))
    assert stored == sent  # one shard, read in stream order, inserted in that order


def test_erasure_deletes_the_visitors_entries_from_their_shard(client, on_cluster, worker_client):
    from tailored import erasure

    erased, kept = uuid.uuid4().hex, uuid.uuid4().hex
    now_ms = int(time.time() * 1000)
    for visitor in (erased, kept):
        assert post_batch(client, visitor, visitor[:8], 3, now_ms) == 202
    shard = visitor_stream(erased, SHARDS)
    assert any(fields["v"] == erased for _, fields in worker_client.xrange(shard))

    erasure.erase_visitor(erased)

    for stream in stream_keys(SHARDS):
        assert not any(fields["v"] == erased for _, fields in worker_client.xrange(stream))
    drain(worker_client)
    assert not EventRow.objects.filter(visitor_id=erased).exists()
    assert EventRow.objects.filter(visitor_id=kept).count() == 3


def test_a_stale_entry_is_claimed_on_its_shard(on_cluster, worker_client):
    from tailored import worker
    from tailored.core.types import Event

    visitor = uuid.uuid4().hex
    on_cluster.record(visitor, [Event("s-1", "page_view", time.time(), category="books")], time.time())
    dead = worker.Consumer.from_settings("dead", block_ms=0)
    assert len(worker.read_new(worker_client, dead, 10, block=False)) == 1  # read, never acknowledged

    live = worker.Consumer.from_settings("live", block_ms=0, claim_idle_seconds=0)
    result = worker.process_once(worker_client, live)

    assert result.entries == 1 and EventRow.objects.filter(visitor_id=visitor).count() == 1
    assert worker_client.xpending(visitor_stream(visitor, SHARDS), CONSUMER_GROUP)["pending"] == 0


def test_changing_the_shard_count_drain_then_switch(client, on_cluster, redis_cluster, settings, worker_client):
    """README "Redis Cluster": web processes move to the new count; one worker drains the old
    layout (`tailored_worker --shards <old> --until-empty`); workers then run on the new count."""
    import io

    from django.core.management import call_command

    from tests.cluster.conftest import cluster_settings

    before, after = uuid.uuid4().hex, uuid.uuid4().hex
    now_ms = int(time.time() * 1000)
    settings.PERSONALIZATION = cluster_settings(redis_cluster, EVENT_STREAM_SHARDS=1)
    assert post_batch(client, before, "old", 3, now_ms) == 202  # the old layout: tl:v1:events
    settings.PERSONALIZATION = cluster_settings(redis_cluster, EVENT_STREAM_SHARDS=3)
    assert post_batch(client, after, "new", 3, now_ms) == 202

    out = io.StringIO()
    call_command("tailored_worker", "--shards", "1", "--until-empty", "--block-ms", "0", "--name", "drainer", stdout=out)
    assert worker_client.xlen("tl:v1:events") == 0
    drain(worker_client)

    assert EventRow.objects.filter(visitor_id__in=[before, after]).count() == 6
