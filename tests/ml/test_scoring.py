"""Between trainings the stream worker keeps personas and propensity scores current: a visitor
gets them within one worker turn of their first stored events; a missing or broken model never
stops ingestion."""

from __future__ import annotations

import logging
import time

import pytest

from tailored import conf, worker
from tailored.core.types import Event, Snapshot
from tailored.events.stream import CONSUMER_GROUP, STREAM_KEY
from tailored.ml import registry, scoring
from tailored.ml.training import load_synthetic, train
from tailored.models import Event as StoredEvent

pytestmark = pytest.mark.django_db
NEWCOMER = "ab" * 16


def quiet(_message: str) -> None:
    pass


@pytest.fixture
def redis_store(settings, redis_url, redis_client, tmp_path):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": redis_url,
        "MODEL_DIR": str(tmp_path / "models"),
        "MODEL_RELOAD_SECONDS": 0,
    }
    redis_client.flushdb()
    worker.ensure_group(redis_client)
    return conf.get_profile_store()


def browse(visitor_id: str, now: float) -> None:
    """A researcher-like first visit: many product views, searches and long reads."""
    events = [Event(f"v{i}", "page_view", ts=now - 600 + i * 10, category="books", item=str(i % 5 + 1), attrs={"page_type": "product"}) for i in range(30)]
    events += [Event(f"s{i}", "search", ts=now - 300 + i, attrs={"query": f"guide {i}"}) for i in range(6)]
    events += [Event(f"d{i}", "scroll_depth", ts=now - 200 + i, attrs={"depth": 100}) for i in range(6)]
    conf.get_profile_store().record(visitor_id, events, now, Snapshot(device="desktop"))


def test_the_worker_gives_a_new_visitor_a_persona_and_scores(redis_store, redis_client):
    now = time.time()
    load_synthetic(160, seed=5, now=now, say=quiet)
    report = train(since_days=28, seed=5, now=now, say=quiet)
    redis_client.delete(STREAM_KEY)  # the synthetic replay's stream entries are not this test's
    worker.ensure_group(redis_client)
    browse(NEWCOMER, now)
    assert redis_store.get(NEWCOMER, now).persona is None
    worker.process_once(redis_client, worker.Consumer(name="w1", batch=10, block_ms=0), now=now)
    profile = redis_store.get(NEWCOMER, now)
    assert StoredEvent.objects.filter(visitor_id=NEWCOMER).count() == 42
    assert profile.persona in {persona.slug for persona in report.personas.personas}
    assert set(profile.scores) == {"churn_risk", "purchase_intent"}
    assert all(0 <= value <= 1 for value in profile.scores.values())


def test_without_models_scoring_writes_nothing(redis_store):
    browse(NEWCOMER, time.time())
    assert scoring.score_visitors([NEWCOMER]) == 0
    assert redis_store.get(NEWCOMER, time.time()).persona is None


def test_a_broken_model_is_logged_and_ingestion_goes_on(redis_store, redis_client, caplog):
    registry.publish(scoring.PERSONAS, "not a persona model", {})
    browse(NEWCOMER, time.time())
    with caplog.at_level(logging.WARNING):
        worker.process_once(redis_client, worker.Consumer(name="w1", batch=10, block_ms=0))
    assert StoredEvent.objects.filter(visitor_id=NEWCOMER).count() == 42  # stored and acknowledged
    assert redis_client.xpending(STREAM_KEY, CONSUMER_GROUP)["pending"] == 0
    assert "could not score 1 visitors" in caplog.text
