"""results(): counts from the rows, put through the pure statistics (the figures here are the
core's own, so this checks the assembly: which counts go where, Holm with three arms, the
hourly looks of the always-valid p-value, the CUPED sums, the holdout row)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tailored.core import cuped, sequential, stats
from tailored.experiments.models import Experiment, ExperimentCount
from tailored.experiments.results import results

from .conftest import make_experiment

pytestmark = pytest.mark.django_db
HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)


def row(experiment, arm, exposures=0, conversions=0, goal="", hour=HOUR, **sums):
    ExperimentCount.objects.create(
        experiment=experiment, arm=arm, goal=goal, hour=hour, exposures=exposures, conversions=conversions, **sums
    )


def block_experiment(*arms: str, **fields) -> Experiment:
    return make_experiment(key="r", target="block", arms=[(arm, 1, {}) for arm in arms], **fields)


def test_two_arms_use_the_plain_p_value_and_the_lift_intervals():
    experiment = block_experiment("control", "b")
    row(experiment, "control", 1000)
    row(experiment, "control", conversions=100, goal="click")
    row(experiment, "b", 1000)
    row(experiment, "b", conversions=140, goal="click")
    found = results(experiment)
    control, b = stats.Counts(100, 1000), stats.Counts(140, 1000)
    assert [(a.exposures, a.conversions) for a in found.arms] == [(1000, 100), (1000, 140)]
    assert found.arms[1].p_value == pytest.approx(stats.two_proportion_z_test(control, b).p_value)
    comparison = stats.compare(control, b)
    assert found.arms[1].absolute_lift == comparison.absolute_lift
    assert found.arms[1].probability_to_beat_control == pytest.approx(comparison.bayes.prob_treatment_beats_control)
    assert found.arms[1].always_valid_p == pytest.approx(sequential.always_valid(control, b).p_value)
    assert found.arms[0].p_value is None and not found.adjusted
    # Running, 1000 of ~14,700 planned visitors per arm: the plain p (0.006) may not call it, and the
    # always-valid p is not conclusive yet (issue 16 item 2).
    assert found.arms[1].p_value < 0.05 < found.arms[1].always_valid_p
    assert found.leader is None
    assert found.verdict.startswith(f"No conclusion yet: 1000 of the {found.sample_size.per_arm} visitors per arm planned (7%)")
    experiment.status = Experiment.Status.PAUSED  # a pause is another look: still no winner
    assert found.leader is None
    experiment.status = Experiment.Status.FINISHED  # over: the fixed-horizon p may be read
    assert found.leader.key == "b" and found.verdict.startswith("Leading with a conclusive lift: b (p-value 0.0")
    assert not found.srm.flagged
    assert found.sample_size.per_arm == stats.sample_size(0.1, 0.1, relative=True).per_arm


def test_a_running_test_calls_a_winner_early_only_on_the_always_valid_p_value():
    experiment = block_experiment("control", "b")
    row(experiment, "control", 4000)
    row(experiment, "control", conversions=400, goal="click")
    row(experiment, "b", 4000)
    row(experiment, "b", conversions=600, goal="click")
    found = results(experiment)
    assert not found.planned_sample_reached and found.arms[1].always_valid_p < 0.05
    assert found.leader.key == "b"
    assert "always-valid p-value, safe to read while the test runs" in found.verdict


def test_three_arms_are_holm_adjusted_with_a_probability_to_be_best():
    experiment = block_experiment("control", "b", "c")
    for arm, conversions in (("control", 100), ("b", 125), ("c", 90)):
        row(experiment, arm, 1000)
        row(experiment, arm, conversions=conversions, goal="click")
    found = results(experiment)
    counts = [stats.Counts(100, 1000), stats.Counts(125, 1000), stats.Counts(90, 1000)]
    adjusted = [pair.adjusted_p_value for pair in stats.pairwise_vs_control(counts)]
    assert found.adjusted and [a.p_value for a in found.arms[1:]] == pytest.approx(adjusted)
    assert sum(a.probability_best for a in found.arms) == pytest.approx(1.0, abs=1e-6)
    assert found.chi_square.p_value == pytest.approx(stats.chi_square_test(counts).p_value)


def test_the_always_valid_p_value_reads_the_hourly_looks():
    experiment = block_experiment("control", "b")
    for i, (c, b) in enumerate(((10, 30), (20, 60), (30, 90))):
        hour = HOUR + timedelta(hours=i)
        row(experiment, "control", 500, hour=hour)
        row(experiment, "control", conversions=c, goal="click", hour=hour)
        row(experiment, "b", 500, hour=hour)
        row(experiment, "b", conversions=b, goal="click", hour=hour)
    found = results(experiment)
    looks = [(stats.Counts(c, n), stats.Counts(b, n)) for n, c, b in ((500, 10, 30), (1000, 30, 90), (1500, 60, 180))]
    series = sequential.always_valid_series(looks)
    assert found.arms[1].always_valid_p == pytest.approx(series[-1].p_value)
    first = sequential.first_conclusive_look(looks)
    assert found.arms[1].conclusive_at == (HOUR + timedelta(hours=first) if first is not None else None)
    assert [e for _, e, _ in found.series["b"]] == [500, 1000, 1500]


def test_cuped_reads_the_covariate_sums():
    experiment = block_experiment("control", "b")
    # Visitors with more pre-exposure clicks convert more: x explains part of y.
    data = {"control": ([1, 1, 0, 0, 1, 0], [3, 2, 0, 1, 4, 0]), "b": ([1, 1, 1, 0, 1, 0], [2, 3, 1, 0, 5, 1])}
    for arm, (y, x) in data.items():
        row(experiment, arm, len(y), sum_x=sum(x), sum_x2=sum(v * v for v in x))
        row(experiment, arm, conversions=sum(y), goal="click", sum_xy=sum(a * b for a, b in zip(y, x, strict=True)))
    found = results(experiment)
    expected = cuped.cuped(cuped.MomentSums.from_arrays(*data["control"]), cuped.MomentSums.from_arrays(*data["b"]))
    assert found.arms[1].cuped_reduction == pytest.approx(expected.variance_reduction)


def test_the_holdout_is_reported_apart_and_srm_reads_the_weights():
    experiment = block_experiment("control", "b", holdout_percent=10)
    row(experiment, "control", 1000)
    row(experiment, "b", 1300)
    row(experiment, "holdout", 200)
    found = results(experiment)
    assert [a.key for a in found.arms] == ["control", "b"]
    assert found.holdout.exposures == 200
    assert found.srm.flagged and found.srm.observed == (1000, 1300)


def test_another_goal_can_be_read():
    experiment = block_experiment("control", "b", goals="click, purchase")
    row(experiment, "b", 10)
    row(experiment, "b", conversions=4, goal="click")
    row(experiment, "b", conversions=1, goal="purchase")
    assert results(experiment).arms[1].conversions == 4
    assert results(experiment, "purchase").arms[1].conversions == 1
