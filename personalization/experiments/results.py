"""An experiment's results for the admin: counts from the flushed rows (the view flushes first),
put through the pure statistics of personalization.core.stats. Nothing here computes a test."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from personalization.core import stats

from . import counting
from .models import HOLDOUT, Experiment

logger = logging.getLogger(__name__)
CONFIDENCE = 0.95
MDE_RELATIVE = 0.10  # the sample-size hint: visitors per arm to see a 10% relative lift


@dataclass(frozen=True, slots=True)
class ArmDefinition:
    key: str
    label: str
    weight: float


@dataclass
class ArmResult:
    key: str
    label: str
    weight: float
    exposures: int
    conversions: int
    rate: float
    interval: tuple[float, float]
    is_control: bool = False
    absolute_lift: stats.Interval | None = None
    relative_lift: stats.Interval | None = None
    p_value: float | None = None  # Holm-adjusted across the arms when there are more than two
    probability_to_beat_control: float | None = None
    expected_loss: float | None = None


@dataclass
class Results:
    experiment: Experiment
    goal: str
    arms: list[ArmResult]
    holdout: ArmResult | None
    srm: stats.SrmResult | None
    sample_size: stats.SampleSize | None
    adjusted: bool  # p-values Holm-adjusted (more than two arms)
    chi_square: stats.ChiSquare | None
    series: dict[str, list[tuple[datetime, int, int]]] = field(default_factory=dict)  # arm -> cumulative

    @property
    def leader(self) -> ArmResult | None:
        """The arm with a significant positive lift and the best rate, if any."""
        winners = [arm for arm in self.arms if arm.p_value is not None and arm.p_value < 0.05
                   and arm.absolute_lift is not None and arm.absolute_lift.estimate > 0]
        return max(winners, key=lambda arm: arm.rate, default=None)


def arm_definitions(experiment: Experiment) -> list[ArmDefinition]:
    """The arms with their weights (a "variants" test without arms: fallback and every variant)."""
    from .targets import TargetError, variant_arms

    if experiment.target == Experiment.Target.VARIANTS:
        try:
            return [ArmDefinition(k, label, w) for k, label, w, _ in variant_arms(experiment, experiment.page.specific)]
        except TargetError:
            pass
    return [ArmDefinition(arm.key, arm.label or arm.key, arm.weight) for arm in experiment.arms.all()]


def totals(experiment: Experiment, goal: str) -> tuple[dict[str, list[int]], dict[str, list[tuple[datetime, int, int]]]]:
    """Per arm (exposures, conversions), and per arm the hourly (hour, exposures, conversions)."""
    per_arm: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    hourly: dict[str, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in experiment.counts.filter(goal__in=("", goal)).order_by("hour"):
        slot = 0 if row.goal == "" else 1
        value = row.exposures if slot == 0 else row.conversions
        per_arm[row.arm][slot] += value
        hourly[row.arm][row.hour][slot] += value
    series = {arm: [(hour, e, c) for hour, (e, c) in sorted(hours.items())] for arm, hours in hourly.items()}
    return per_arm, series


def results(experiment: Experiment, goal: str | None = None) -> Results:
    """Everything the results page shows, for one goal (default: the primary goal)."""
    goal = goal or experiment.primary_goal
    try:
        counting.flush([experiment.key])
    except Exception as error:  # the page still shows what was flushed before
        logger.warning("experiment %s: counts not flushed on view: %s", experiment.key, error)
    per_arm, series = totals(experiment, goal)
    definitions = arm_definitions(experiment)
    counts = [_counts(per_arm.get(arm.key, [0, 0])) for arm in definitions]
    arms = [_arm(arm, count, i == 0) for i, (arm, count) in enumerate(zip(definitions, counts, strict=True))]
    adjusted = len(arms) > 2
    if len(arms) >= 2 and counts[0].exposures:
        _compare(arms, counts)
    holdout = _arm(ArmDefinition(HOLDOUT, "Holdout", 0), _counts(per_arm[HOLDOUT]), False) if HOLDOUT in per_arm else None
    exposures = [count.exposures for count in counts]
    srm = stats.srm_check(exposures, [arm.weight for arm in definitions]) if len(arms) >= 2 and sum(exposures) else None
    baseline = counts[0].rate if counts else 0.0
    sample = stats.sample_size(baseline, MDE_RELATIVE, relative=True) if 0 < baseline < 1 / (1 + MDE_RELATIVE) else None
    chi = stats.chi_square_test(counts) if adjusted and all(c.exposures for c in counts) else None
    return Results(experiment, goal, arms, holdout, srm, sample, adjusted, chi, _cumulative(series))


def _counts(pair: list[int]) -> stats.Counts:
    exposures, conversions = pair
    return stats.Counts(min(conversions, exposures), exposures)  # an hour's rounding never breaks the math


def _arm(arm: ArmDefinition, counts: stats.Counts, is_control: bool) -> ArmResult:
    return ArmResult(arm.key, arm.label, arm.weight, counts.exposures, counts.conversions, counts.rate,
                     stats.wilson_interval(counts, CONFIDENCE), is_control)


def _compare(arms: list[ArmResult], counts: list[stats.Counts]) -> None:
    """Lifts, p-values (Holm across arms) and the Bayesian reading of each arm against control."""
    measured = [i for i, count in enumerate(counts) if i and count.exposures]
    if not measured:
        return
    pairwise = dict(zip(measured, stats.pairwise_vs_control([counts[0]] + [counts[i] for i in measured]), strict=True))
    for i, pair in pairwise.items():
        comparison = stats.compare(counts[0], counts[i], CONFIDENCE)
        arm = arms[i]
        arm.absolute_lift, arm.relative_lift = comparison.absolute_lift, _finite(comparison.relative_lift)
        arm.p_value = pair.adjusted_p_value if len(arms) > 2 else pair.test.p_value
        arm.probability_to_beat_control = comparison.bayes.prob_treatment_beats_control
        arm.expected_loss = comparison.bayes.expected_loss_treatment


def _finite(interval: stats.Interval) -> stats.Interval | None:
    # A control rate of 0 has no relative lift.
    values = (interval.estimate, interval.lower, interval.upper)
    return interval if all(math.isfinite(v) for v in values) else None


def _cumulative(series: dict[str, list[tuple[datetime, int, int]]]) -> dict[str, list[tuple[datetime, int, int]]]:
    cumulative = {}
    for arm, hours in series.items():
        exposures = conversions = 0
        points = []
        for hour, e, c in hours:
            exposures, conversions = exposures + e, conversions + c
            points.append((hour, exposures, conversions))
        cumulative[arm] = points
    return cumulative
