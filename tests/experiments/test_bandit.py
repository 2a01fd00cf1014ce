"""Thompson-sampling reallocation against simulated visitors with known conversion rates: new
visitors are bucketed with the compiled weights, counted through the real counters (Redis),
flushed, reallocated. The weights keep their 1% floor, every reallocation is a history row, and
traffic moves to the better arm. (The regret comparison with a fixed split is the core's:
tests/core/test_bandits.py.)"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import call_command

from cms.models import HomePage, LandingPage
from tailored import conf
from tailored.core.bucketing import assign
from tailored.core.types import Consent, Context, Visitor
from tailored.experiments import counting
from tailored.experiments.bandit import reallocate_due
from tailored.experiments.counting import counters
from tailored.experiments.models import AllocationChange, Experiment
from tailored.experiments.services import group_for

from .conftest import make_experiment, running
from .test_rendering import EXPERIMENT_SECTION

pytestmark = pytest.mark.django_db
RATES = {"control": 0.04, "bold": 0.12}
GRANTED = Consent(decided=True, analytics=True, personalization=True)
START = datetime(2026, 11, 20, 9, tzinfo=UTC)


@pytest.fixture
def bandit(use_redis_store) -> Experiment:
    page = LandingPage(title="CTA test", slug="cta-bandit", body=[EXPERIMENT_SECTION])
    HomePage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    return make_experiment(
        page=page, key="cta-test", target=Experiment.Target.BLOCK, arms=[("control", 50, {}), ("bold", 50, {})],
        allocation=Experiment.Allocation.THOMPSON, reallocate_every_minutes=60,
    )


def simulate_round(round_no: int, visitors: int, at: datetime, rng: np.random.Generator) -> dict[str, int]:
    """New visitors follow the compiled weights; each converts with its arm's known rate."""
    live, backend, shown = running("cta-test"), counters(), {"control": 0, "bold": 0}
    for i in range(visitors):
        visitor_id = f"{round_no:04x}{i:028x}"
        arm = assign(live.spec, visitor_id).arm
        shown[arm] += 1
        backend.expose("cta-test", arm, visitor_id, at.timestamp())
        if rng.random() < RATES[arm]:
            backend.convert("cta-test", "click", visitor_id, at.timestamp(), at.timestamp())
    return shown


def test_reallocation_moves_traffic_to_the_better_arm_keeping_floors_and_history(bandit):
    rng = np.random.default_rng(7)
    shares, regret = [], 0.0
    for round_no in range(8):
        at = START + timedelta(minutes=61 * round_no)
        shown = simulate_round(round_no, 300, at, rng)
        shares.append(shown["bold"] / 300)
        regret += sum(n * (max(RATES.values()) - RATES[arm]) for arm, n in shown.items())
        changes = reallocate_due(at + timedelta(minutes=1))
        assert [change.experiment for change in changes] == ["cta-test"]
    history = list(AllocationChange.objects.filter(experiment=bandit))
    assert len(history) == 8 and [c.at for c in history] == sorted(c.at for c in history)
    for change in history:
        assert sum(change.weights.values()) == pytest.approx(1.0)
        assert min(change.weights.values()) >= 0.01 - 1e-12  # every arm keeps at least 1%
    assert history[0].weights == pytest.approx({"control": 0.5, "bold": 0.5})  # the start: the editor's weights
    assert history[0].reason == "the editor's weights (start)" and history[1].reason == "Thompson sampling on click"
    assert history[-1].weights["bold"] > 0.9
    # The counts each change used are the flushed totals so far.
    assert sum(n for _, n in history[-1].counts.values()) == 300 * 8
    # New visitors follow the weights: the first round is 50/50, the last mostly "bold".
    assert shares[0] == pytest.approx(0.5, abs=0.1) and shares[-1] > 0.85
    # Expected conversions lost against always showing "bold": a fixed 50/50 split loses 96.
    fixed_split = 300 * 8 * 0.5 * (RATES["bold"] - RATES["control"])
    assert regret < fixed_split / 2
    # The cache compiles the latest weights into the bucketing spec.
    live = running("cta-test")
    assert {arm.key: arm.weight for arm in live.spec.arms} == pytest.approx(history[-1].weights)


def test_the_first_allocation_keeps_the_floor_even_for_an_arm_the_editor_weighted_0(bandit):
    bandit.arms.filter(key="control").update(weight=0)
    (start,) = reallocate_due(START)
    assert start.weights == pytest.approx({"control": 0.01, "bold": 0.99})


def test_a_reallocation_waits_for_its_cadence_and_only_for_running_bandits(bandit):
    make_experiment(key="fixed", target=Experiment.Target.BLOCK, arms=[("control", 1, {}), ("b", 1, {})])
    assert len(reallocate_due(START)) == 1
    assert reallocate_due(START + timedelta(minutes=59)) == []
    assert len(reallocate_due(START + timedelta(minutes=60))) == 1
    Experiment.objects.filter(pk=bandit.pk).update(status=Experiment.Status.PAUSED)
    assert reallocate_due(START + timedelta(hours=5)) == []
    assert AllocationChange.objects.count() == 2


def test_visitors_keep_their_arm_when_the_weights_move(bandit):
    """Sticky assignment: the profile keeps the first arm; only new visitors follow new weights."""
    store = conf.get_profile_store()

    def visitor(visitor_id: str) -> Visitor:
        return Visitor(id=visitor_id, consent=GRANTED, context=Context(device="desktop"),
                       profile=store.get(visitor_id, time.time()), segments=frozenset())

    live = running("cta-test")
    first = next(f"{i:032x}" for i in range(1, 500) if assign(live.spec, f"{i:032x}").arm == "control")
    assert group_for(visitor(first), live) == "control"
    AllocationChange.objects.create(experiment=bandit, at=START, weights={"control": 0.0001, "bold": 0.9999})
    moved = running("cta-test")
    assert assign(moved.spec, first).arm == "bold"  # a new visitor with this id would get "bold"
    assert group_for(visitor(first), moved) == "control"


def test_the_worker_flush_and_the_command_reallocate(bandit):
    counting.flush_clock.reset()
    counting.flush_due()
    assert AllocationChange.objects.filter(experiment=bandit).count() == 1
    out = io.StringIO()
    call_command("tailored_reallocate", stdout=out)
    assert "0 Thompson-sampling experiment(s) due" in out.getvalue()  # reallocated a moment ago
    AllocationChange.objects.update(at=START)
    out = io.StringIO()
    call_command("tailored_reallocate", stdout=out)
    assert "1 Thompson-sampling experiment(s) due" in out.getvalue() and "cta-test: control" in out.getvalue()
