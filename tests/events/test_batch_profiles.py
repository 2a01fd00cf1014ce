"""One profile read per worker batch (issue 17 item 8): scoring, the insight counts and the state
triggers share each batch's profiles, read once with the union of the windows they need, and each
still sees what a read of its own after scoring would have shown: the persona and scores this very
batch's scoring wrote decide the segments an impression counts under and fire a score trigger."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from tailored import conf, worker
from tailored.activation import triggers
from tailored.activation.models import ActivationSend, Destination, KnownVisitor, Trigger
from tailored.core.types import Event, Snapshot
from tailored.events.stream import STREAM_KEY
from tailored.insights import counting
from tailored.ml.features import FEATURE_WINDOWS
from tailored.ml.training import load_synthetic, train
from tailored.models import InsightHour, Segment
from tests.helpers import HOME_BLOCK

pytestmark = pytest.mark.django_db
NEWCOMER = "cd" * 16


@pytest.fixture
def trained(settings, redis_url, redis_client, tmp_path):
    """The real Redis store with persona and propensity models trained on synthetic visitors."""
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": redis_url,
        "MODEL_DIR": str(tmp_path / "models"),
        "MODEL_RELOAD_SECONDS": 0,
        "SEGMENT_REFRESH_SECONDS": 0,
    }
    redis_client.flushdb()
    now = time.time()
    load_synthetic(160, seed=5, now=now, say=lambda _: None)
    for step in ("personas", "propensity"):
        train(since_days=28, seed=5, now=now, only=step, say=lambda _: None)
    redis_client.delete(STREAM_KEY)  # the synthetic replay's entries are not this test's
    worker.ensure_group(redis_client)
    counting.flush_clock.reset()
    triggers.trigger_cache.invalidate()
    yield conf.get_profile_store()
    triggers.trigger_cache.invalidate()


def test_one_read_serves_scoring_the_insight_counts_and_a_score_trigger(trained, redis_client, monkeypatch):
    # A segment only a scored visitor is in, and one on a windowed count.
    Segment.objects.create(slug="scored", name="Scored", rule={"field": "score.churn_risk", "op": "gte", "value": 0})
    fans = Segment.objects.create(
        slug="electronics-readers", name="Electronics readers",
        rule={"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 2},
    )
    email = Destination.objects.create(name="Shop email", kind="email", email_subject="Hello", email_body="Hi")
    Trigger.objects.create(name="Any churn risk", kind="score_above", destination=email,
                           params={"score": "churn_risk", "threshold": 0.0001})
    KnownVisitor.objects.create(visitor_id=NEWCOMER, email="new@example.com", marketing=True, email_hash="0" * 64,
                                identified_at=timezone.now())
    reads = []
    real_read = trained.get_many

    def counted_read(visitor_ids, now, windows=()):
        reads.append((sorted(visitor_ids), frozenset(windows)))
        return real_read(visitor_ids, now, windows)

    monkeypatch.setattr(trained, "get_many", counted_read)
    now = time.time() + 30  # first seen after the trigger was enabled: a new visitor it may fire for
    events = [Event(f"v{n}", "page_view", ts=now - 20 + n, category="electronics", item=str(n + 1), attrs={"page_type": "product"}) for n in range(3)]
    events.append(Event("i1", "impression", ts=now - 10, url="/", attrs={"block": HOME_BLOCK, "variant": "fallback", "page": 3, "seconds": 2.0}))
    trained.record(NEWCOMER, events, now, Snapshot(device="mobile", country="DE"))

    result = worker.process_once(redis_client, worker.Consumer(name="w1", batch=10, block_ms=0), now=now)

    assert result.events == 4
    [(visitors, windows)] = reads  # one read for the batch, not one per step
    assert visitors == [NEWCOMER] and FEATURE_WINDOWS | fans.compiled().windows <= windows
    scored = real_read([NEWCOMER], now)[NEWCOMER]
    assert scored.persona and 0 < scored.scores["churn_risk"] <= 1
    # The impression counts under the segments the visitor is in once this batch is scored.
    counting.flush(redis_client)
    counted = set(InsightHour.objects.filter(block=HOME_BLOCK).values_list("segment", flat=True))
    assert {"", "scored", "electronics-readers"} <= counted
    # And the score this batch wrote fired the trigger, with that score as its reason.
    [send] = ActivationSend.objects.filter(test=False)
    assert send.payload["reason"] == {"score": "churn_risk", "value": scored.scores["churn_risk"], "threshold": 0.0001}
