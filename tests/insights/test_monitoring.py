"""Model monitoring (issue 17 item 5): daily score distributions, a drift alert when one shifts
(PSI above DRIFT_PSI_THRESHOLD), and `tailored_train --if-stale` deciding when to retrain."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from tailored import conf
from tailored.core.types import Event
from tailored.insights import monitoring
from tailored.models import Alert, ScoreDay
from tailored.models import Event as EventRow

pytestmark = pytest.mark.django_db
NOW = time.time()


@pytest.fixture
def models(memory_store, tmp_path, personalization):
    personalization(MODEL_DIR=str(tmp_path))
    return conf.get_profile_store()  # a fresh memory store for the changed settings


def visitors_scored(store, values: list[float], persona: str = "bargain-hunters") -> None:
    for i, value in enumerate(values):
        visitor = f"m{i:031d}"
        store.record(visitor, [Event(f"e{i}", "page_view", ts=NOW - 60)], NOW - 60)
        store.set_model_outputs({visitor: (persona, {"churn_risk": value})})


def test_a_shifted_score_distribution_raises_a_drift_alert(models):
    yesterday = datetime.fromtimestamp(NOW, tz=UTC).date() - timedelta(days=1)
    ScoreDay.objects.create(name="churn_risk", day=yesterday, bins=[[f"{i / 10:.1f}", 10] for i in range(10)])
    visitors_scored(models, [0.95] * 80 + [0.05] * 20)  # most visitors now look like churners
    raised = monitoring.snapshot(NOW)
    assert [a.kind for a in raised] == ["drift"]
    assert "churn_risk distribution shifted" in raised[0].message and raised[0].observed > 0.25
    today = ScoreDay.objects.get(name="churn_risk", day=yesterday + timedelta(days=1))
    assert dict(map(tuple, today.bins))["0.9"] == 80
    assert ScoreDay.objects.filter(name="persona").exists()


def test_a_stable_distribution_raises_nothing(models):
    yesterday = datetime.fromtimestamp(NOW, tz=UTC).date() - timedelta(days=1)
    ScoreDay.objects.create(name="churn_risk", day=yesterday, bins=[[f"{i / 10:.1f}", 10] for i in range(10)])
    visitors_scored(models, [(i % 10) / 10 + 0.05 for i in range(100)])
    assert monitoring.snapshot(NOW) == []


def test_if_stale_trains_only_when_models_are_missing_old_outnumbered_or_drifted(models):
    from tailored.ml import registry

    assert monitoring.stale_reason(7, 28) == "no trained personas, propensity, recommender model"
    for name in ("personas", "propensity", "recommender"):
        registry.publish(name, {"demo": True}, {})
    assert monitoring.stale_reason(7, 28) is None
    out = io.StringIO()
    call_command("tailored_train", "--if-stale", stdout=out)
    assert "the models are fresh: nothing to train" in out.getvalue()
    assert "days old" in monitoring.stale_reason(7, 28, now=datetime.now(UTC) + timedelta(days=8))
    EventRow.objects.create(visitor_id="v", event_id="n1", type="page_view", ts=datetime.now(UTC) + timedelta(seconds=5))
    assert "events since the last training" in monitoring.stale_reason(7, 28, now=datetime.now(UTC) + timedelta(minutes=1))
    EventRow.objects.all().delete()
    Alert.objects.create(kind=Alert.Kind.DRIFT, key="score|x", direction="shift", since=datetime.now(UTC), baseline=0.25, observed=0.4, message="m")
    assert "score drift" in monitoring.stale_reason(7, 28)
    assert conf.get("DRIFT_PSI_THRESHOLD") == 0.25
