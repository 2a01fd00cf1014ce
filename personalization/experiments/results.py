"""An experiment's results for the admin: counts from the flushed rows (the view flushes first),
put through the pure statistics of tailored.core.stats. Nothing here computes a test."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from tailored.core import cuped, factorial, multiple, sequential, stats

from . import counting
from .models import HOLDOUT, AllocationChange, Experiment, parse_cell

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
    probability_best: float | None = None  # with more than two arms
    always_valid_p: float | None = None  # mSPRT over the hourly looks: safe to read at any time
    conclusive_at: datetime | None = None  # the hour the always-valid result first became conclusive
    cuped_reduction: float | None = None  # share of the variance the pre-exposure covariate removes


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
    effects: tuple[factorial.Effect, ...] = ()  # a factorial experiment's main effects and interactions
    factorial_problem: str | None = None  # why arms that look like cells give no effects

    @property
    def planned_sample_reached(self) -> bool:
        """Every arm has the visitors the sample-size hint asks for (never, without a hint)."""
        if self.sample_size is None or not self.arms:
            return False
        return min(arm.exposures for arm in self.arms) >= self.sample_size.per_arm

    @property
    def reads_fixed_horizon(self) -> bool:
        """The plain p-value may be read once the planned sample is in, or the test is finished;
        before that (running or paused) every look at it inflates false winners, so the always-valid
        p decides (issue 16 item 2; README "Reading experiment results")."""
        return self.planned_sample_reached or self.experiment.status == self.experiment.Status.FINISHED

    @property
    def leader(self) -> ArmResult | None:
        """The arm with a conclusive positive lift and the best rate, if any."""
        def p_of(arm: ArmResult) -> float | None:
            return arm.p_value if self.reads_fixed_horizon else arm.always_valid_p

        winners = [arm for arm in self.arms if (p := p_of(arm)) is not None and p < 0.05
                   and arm.absolute_lift is not None and arm.absolute_lift.estimate > 0]
        return max(winners, key=lambda arm: arm.rate, default=None)

    @property
    def verdict(self) -> str:
        """One sentence an editor can act on: who leads and by which test, or how far along it is."""
        leader = self.leader
        if leader is not None:
            basis = "p-value" if self.reads_fixed_horizon else "always-valid p-value, safe to read while the test runs"
            p = leader.p_value if self.reads_fixed_horizon else leader.always_valid_p
            return f"Leading with a conclusive lift: {leader.label} ({basis} {p:.4f})."
        smallest = min((arm.exposures for arm in self.arms), default=0)
        if self.reads_fixed_horizon:
            return "No arm beats the control significantly."
        if self.sample_size is None:
            return f"No conclusion yet: {smallest} visitors in the smallest arm, and no arm is conclusive by the always-valid p-value."
        share = 100 * smallest / self.sample_size.per_arm
        return (
            f"No conclusion yet: {smallest} of the {self.sample_size.per_arm} visitors per arm planned ({share:.0f}%). "
            "Until then only the always-valid p-value can call a winner, and none is conclusive."
        )


def arm_definitions(experiment: Experiment) -> list[ArmDefinition]:
    """The arms with their weights (a "variants" test without arms: fallback and every variant)."""
    from .targets import TargetError, variant_arms

    if experiment.target == Experiment.Target.VARIANTS:
        try:
            return [ArmDefinition(k, label, w) for k, label, w, _ in variant_arms(experiment, experiment.page.specific)]
        except TargetError:
            pass
    return [ArmDefinition(arm.key, arm.label or _short_label(arm.key), arm.weight) for arm in experiment.arms.all()]


def _short_label(key: str) -> str:
    """A factorial cell's levels ("new · green" for "headline=new,button=green"): short enough
    for the charts' labels; the table still shows the key."""
    cell = parse_cell(key)
    return " · ".join(cell.values()) if cell else key


@dataclass
class ArmTotals:
    """One arm's counts for one goal, with the CUPED sums (y = 1 for a converter)."""

    exposures: int = 0
    conversions: int = 0
    sum_x: int = 0
    sum_x2: int = 0
    sum_xy: int = 0

    def moments(self) -> cuped.MomentSums:
        y = min(self.conversions, self.exposures)
        return cuped.MomentSums(self.exposures, y, self.sum_x, y, self.sum_x2, self.sum_xy)


Series = dict[str, list[tuple[datetime, int, int]]]


def totals(experiment: Experiment, goal: str) -> tuple[dict[str, ArmTotals], Series]:
    """Per arm its totals, and per arm the hourly (hour, exposures, conversions)."""
    per_arm: dict[str, ArmTotals] = defaultdict(ArmTotals)
    hourly: dict[str, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in experiment.counts.filter(goal__in=("", goal)).order_by("hour"):
        arm = per_arm[row.arm]
        if row.goal == "":
            arm.exposures += row.exposures
            arm.sum_x += row.sum_x
            arm.sum_x2 += row.sum_x2
            hourly[row.arm][row.hour][0] += row.exposures
        else:
            arm.conversions += row.conversions
            arm.sum_xy += row.sum_xy
            hourly[row.arm][row.hour][1] += row.conversions
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
    counts = [_counts(per_arm.get(arm.key, ArmTotals())) for arm in definitions]
    arms = [_arm(arm, count, i == 0) for i, (arm, count) in enumerate(zip(definitions, counts, strict=True))]
    adjusted = len(arms) > 2
    cumulative = _cumulative(series)
    if len(arms) >= 2 and counts[0].exposures:
        _compare(arms, counts)
        _sequential(arms, cumulative)
        _variance_reduction(arms, [per_arm.get(arm.key, ArmTotals()) for arm in definitions])
    if adjusted and all(count.exposures for count in counts):
        for arm, best in zip(arms, stats.probability_best(counts), strict=True):
            arm.probability_best = best
    holdout = _arm(ArmDefinition(HOLDOUT, "Holdout", 0), _counts(per_arm[HOLDOUT]), False) if HOLDOUT in per_arm else None
    exposures = [count.exposures for count in counts]
    # A bandit's weights move, so its split is not expected to follow any one set of weights.
    bandit = experiment.allocation == Experiment.Allocation.THOMPSON
    srm = stats.srm_check(exposures, [arm.weight for arm in definitions]) if len(arms) >= 2 and sum(exposures) and not bandit else None
    baseline = counts[0].rate if counts else 0.0
    sample = stats.sample_size(baseline, MDE_RELATIVE, relative=True) if 0 < baseline < 1 / (1 + MDE_RELATIVE) else None
    chi = stats.chi_square_test(counts) if adjusted and all(c.exposures for c in counts) else None
    effects, factorial_problem = factorial_results([arm.key for arm in definitions], counts)
    return Results(experiment, goal, arms, holdout, srm, sample, adjusted, chi, cumulative, effects, factorial_problem)


def _counts(arm: ArmTotals) -> stats.Counts:
    return stats.Counts(min(arm.conversions, arm.exposures), arm.exposures)


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


def _sequential(arms: list[ArmResult], cumulative: Series) -> None:
    """Always-valid p-values over the hourly looks (each look: every arm's counts so far)."""
    hours = sorted({hour for points in cumulative.values() for hour, _, _ in points})
    at_hour = {arm: _carried(points, hours) for arm, points in cumulative.items()}
    control = at_hour.get(arms[0].key)
    for arm in arms[1:]:
        if control is None or arm.key not in at_hour:
            continue
        looks = [(stats.Counts(min(c, e), e), stats.Counts(min(tc, te), te))
                 for (e, c), (te, tc) in zip(control, at_hour[arm.key], strict=True)]
        results = sequential.always_valid_series(looks)
        arm.always_valid_p = results[-1].p_value
        first = next((i for i, result in enumerate(results) if result.conclusive), None)
        arm.conclusive_at = hours[first] if first is not None else None


def _carried(points: list[tuple[datetime, int, int]], hours: list[datetime]) -> list[tuple[int, int]]:
    """Cumulative (exposures, conversions) at every hour, carried forward over quiet hours."""
    by_hour = {hour: (e, c) for hour, e, c in points}
    carried, last = [], (0, 0)
    for hour in hours:
        last = by_hour.get(hour, last)
        carried.append(last)
    return carried


def _variance_reduction(arms: list[ArmResult], sums: list[ArmTotals]) -> None:
    """What CUPED with the pre-exposure covariate (EXPERIMENT_CUPED_DAYS) would remove, per arm against control."""
    for arm, arm_sums in zip(arms[1:], sums[1:], strict=True):
        try:
            arm.cuped_reduction = cuped.cuped(sums[0].moments(), arm_sums.moments()).variance_reduction
        except (ValueError, ZeroDivisionError):
            arm.cuped_reduction = None  # too few visitors, or no covariate variance yet
        if arm.cuped_reduction is not None and not math.isfinite(arm.cuped_reduction):
            arm.cuped_reduction = None


def _cumulative(series: Series) -> Series:
    cumulative = {}
    for arm, hours in series.items():
        exposures = conversions = 0
        points = []
        for hour, e, c in hours:
            exposures, conversions = exposures + e, conversions + c
            points.append((hour, exposures, conversions))
        cumulative[arm] = points
    return cumulative


# -- Factorial experiments ------------------------------------------------------------------------


def factorial_results(keys: list[str], counts: list[stats.Counts]) -> tuple[tuple[factorial.Effect, ...], str | None]:
    """Main effects and interactions when the arms are the cells "factor=level,..." of a full
    grid (level 0 of each factor: its level in the first arm, the control); else ((), reason)."""
    cells = [parse_cell(key) for key in keys]
    if not cells or not all(cells):
        return (), None  # not a factorial experiment
    factors = tuple(cells[0])
    levels: dict[str, list[str]] = {factor: [] for factor in factors}
    for cell in cells:
        if tuple(cell) != factors:
            return (), "the arms do not all name the same factors in the same order"
        for factor, level in cell.items():
            if level not in levels[factor]:
                levels[factor].append(level)
    grid = {tuple(levels[f].index(cell[f]) for f in factors): count for cell, count in zip(cells, counts, strict=True)}
    try:
        return factorial.factorial_effects(factors, grid, CONFIDENCE), None
    except ValueError as error:
        return (), str(error)


# -- Multiple comparisons (Benjamini-Hochberg) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdjustedComparison:
    """One arm against its control on one goal, with its p-value BH-adjusted across the family."""

    experiment: str
    arm: str
    goal: str
    p_value: float
    adjusted: float
    rejected: bool  # a discovery at a 5% false discovery rate


def comparisons(experiment: Experiment, goal: str) -> list[tuple[str, float]]:
    """(arm, two-sided p-value against control) for every measured arm on one goal, unadjusted."""
    per_arm, _ = totals(experiment, goal)
    definitions = arm_definitions(experiment)
    counts = [_counts(per_arm.get(arm.key, ArmTotals())) for arm in definitions]
    if len(counts) < 2 or not counts[0].exposures:
        return []
    return [(arm.key, stats.two_proportion_z_test(counts[0], count).p_value)
            for arm, count in zip(definitions[1:], counts[1:], strict=True) if count.exposures]


def _bh(rows: list[tuple[str, str, str, float]]) -> list[AdjustedComparison]:
    if not rows:
        return []
    adjusted = multiple.benjamini_hochberg([p for *_, p in rows])
    return [AdjustedComparison(key, arm, goal, p, a, r)
            for (key, arm, goal, p), a, r in zip(rows, adjusted.adjusted, adjusted.rejected, strict=True)]


def goal_family(experiment: Experiment) -> list[AdjustedComparison]:
    """Every arm against control on every goal of the experiment, BH-adjusted together."""
    return _bh([(experiment.key, arm, goal, p) for goal in experiment.goal_list for arm, p in comparisons(experiment, goal)])


def page_family(experiment: Experiment) -> list[AdjustedComparison]:
    """Every running experiment on the experiment's page (and the experiment itself), each
    arm against control on its primary goal, BH-adjusted together."""
    members = list(
        Experiment.objects.filter(page_id=experiment.page_id, status=Experiment.Status.RUNNING)
        .exclude(pk=experiment.pk).select_related("page").prefetch_related("arms").order_by("created_at", "pk")
    )
    try:
        counting.flush([member.key for member in members])
    except Exception as error:  # the family still uses what was flushed before
        logger.warning("page experiments not flushed on view: %s", error)
    rows = [(e.key, arm, e.primary_goal, p) for e in [experiment, *members] for arm, p in comparisons(e, e.primary_goal)]
    return _bh(rows)


def allocation_history(experiment: Experiment) -> list[AllocationChange]:
    """A bandit's reallocations, oldest first."""
    return list(experiment.allocation_changes.order_by("at", "pk"))
