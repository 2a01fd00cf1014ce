"""Fixed-horizon statistics for conversion experiments: pure functions of counts.

Public API (every result is a frozen dataclass):

    Counts(conversions, exposures)                       .rate
    two_proportion_z_test(control, treatment) -> ZTest
    chi_square_test(arms) -> ChiSquare                    (r x 2 table, no continuity correction)
    pairwise_vs_control(arms, alpha=0.05) -> tuple[Pairwise, ...]   (Holm-corrected)
    absolute_lift_interval(control, treatment, confidence=0.95, method="newcombe") -> Interval
    relative_lift_interval(control, treatment, confidence=0.95) -> Interval
    beta_binomial(control, treatment) -> BayesResult      (Beta(1, 1) priors, numeric integration)
    probability_best(arms) -> tuple[float, ...]           (each arm's chance to be the best)
    sample_size(baseline, mde, relative=False, alpha=0.05, power=0.8) -> SampleSize
    power(baseline, mde, per_arm, relative=False, alpha=0.05) -> float
    srm_check(exposures, weights, threshold=0.001) -> SrmResult
    compare(control, treatment, confidence=0.95) -> Comparison   (all of the above for one pair)
    personalization_lift(personalized, holdout, confidence=0.95) -> Comparison

Conventions: "treatment minus control"; absolute lift is a difference of rates, relative lift is
treatment rate / control rate - 1. Tests are two-sided. The z-test uses the pooled standard
error (the null says both rates are equal); intervals use unpooled errors (Newcombe's hybrid
score interval, method 10 of Newcombe 1998, by default; the plain Wald interval on request).
The relative-lift interval is the delta method on the log of the rate ratio (Katz et al. 1978),
mapped back through exp, so it is asymmetric and never goes below -100%.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from .multiple import holm

# numpy and scipy (the `ml` extra) are imported inside the functions that compute with them:
# `Counts` is read on every request that serves an experiment, and a web process must not carry
# scipy (~90 MB) for that. Only a results page, a report or a reallocation pays for it.
if TYPE_CHECKING:
    import numpy as np

NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Counts:
    """Conversions among exposures (visitors) of one arm or group."""

    conversions: int
    exposures: int

    def __post_init__(self) -> None:
        if self.exposures < 0 or not 0 <= self.conversions <= self.exposures:
            raise ValueError(
                f"need 0 <= conversions <= exposures, got {self.conversions}/{self.exposures}"
            )

    @property
    def rate(self) -> float:
        return self.conversions / self.exposures if self.exposures else 0.0


@dataclass(frozen=True, slots=True)
class ZTest:
    control_rate: float
    treatment_rate: float
    difference: float  # treatment - control
    standard_error: float  # pooled, under the null of equal rates
    z: float
    p_value: float  # two-sided


@dataclass(frozen=True, slots=True)
class ChiSquare:
    statistic: float
    dof: int
    p_value: float


@dataclass(frozen=True, slots=True)
class Pairwise:
    """One arm against control; `adjusted_p_value` is Holm-corrected across all arms."""

    arm: int  # index into the arms given, control being 0
    test: ZTest
    adjusted_p_value: float
    significant: bool


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    lower: float
    upper: float
    confidence: float
    method: str


@dataclass(frozen=True, slots=True)
class BayesResult:
    """Beta(1, 1) priors. Expected loss is in rate units: what choosing that arm costs, on
    average, in the worlds where it is the worse one (0.001 = 0.1 percentage point)."""

    prob_treatment_beats_control: float
    expected_loss_treatment: float
    expected_loss_control: float


@dataclass(frozen=True, slots=True)
class SampleSize:
    per_arm: int
    total: int  # for two arms
    baseline: float
    target: float
    alpha: float
    power: float


@dataclass(frozen=True, slots=True)
class SrmResult:
    """Sample-ratio mismatch: exposures far from the configured weights mean broken assignment
    or tracking, and every other number of the experiment is suspect."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    flagged: bool


@dataclass(frozen=True, slots=True)
class Comparison:
    """Everything the results page shows for one arm against its baseline."""

    control: Counts
    treatment: Counts
    test: ZTest
    absolute_lift: Interval
    relative_lift: Interval
    bayes: BayesResult


def _z(confidence: float) -> float:
    from scipy import stats as scipy_stats

    return float(scipy_stats.norm.ppf(0.5 + confidence / 2))


def _two_sided_p(z: float) -> float:
    from scipy import stats as scipy_stats

    return float(2 * scipy_stats.norm.sf(abs(z)))


def two_proportion_z_test(control: Counts, treatment: Counts) -> ZTest:
    """Two-sided z-test of equal rates with the pooled standard error (z**2 equals the 2 x 2
    Pearson chi-square without continuity correction)."""
    p_c, p_t = control.rate, treatment.rate
    n_c, n_t = control.exposures, treatment.exposures
    if n_c == 0 or n_t == 0:
        return ZTest(p_c, p_t, p_t - p_c, NAN, 0.0, 1.0)
    pooled = (control.conversions + treatment.conversions) / (n_c + n_t)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    if se == 0.0:  # nobody or everybody converted: no evidence of a difference
        return ZTest(p_c, p_t, p_t - p_c, 0.0, 0.0, 1.0)
    z = (p_t - p_c) / se
    return ZTest(p_c, p_t, p_t - p_c, se, z, _two_sided_p(z))


def chi_square_test(arms: Sequence[Counts]) -> ChiSquare:
    """Pearson chi-square of independence for arms x (converted, not converted)."""
    total_n = sum(arm.exposures for arm in arms)
    total_x = sum(arm.conversions for arm in arms)
    dof = len(arms) - 1
    if total_n == 0 or total_x in (0, total_n) or dof < 1:
        return ChiSquare(0.0, max(dof, 0), 1.0)
    pooled = total_x / total_n
    statistic = 0.0
    for arm in arms:
        if arm.exposures == 0:
            continue
        expected_x = arm.exposures * pooled
        expected_not = arm.exposures - expected_x
        statistic += (arm.conversions - expected_x) ** 2 / expected_x
        statistic += (arm.exposures - arm.conversions - expected_not) ** 2 / expected_not
    from scipy import stats as scipy_stats

    return ChiSquare(statistic, dof, float(scipy_stats.chi2.sf(statistic, dof)))


def pairwise_vs_control(arms: Sequence[Counts], alpha: float = 0.05) -> tuple[Pairwise, ...]:
    """Every arm after the first against the first (control), Holm-corrected."""
    tests = [two_proportion_z_test(arms[0], arm) for arm in arms[1:]]
    corrected = holm([test.p_value for test in tests], alpha)
    return tuple(
        Pairwise(i + 1, test, adjusted, rejected)
        for i, (test, adjusted, rejected) in enumerate(
            zip(tests, corrected.adjusted, corrected.rejected, strict=True)
        )
    )


def wilson_interval(counts: Counts, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for one rate (Wilson 1927)."""
    n = counts.exposures
    if n == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = counts.rate
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def absolute_lift_interval(
    control: Counts, treatment: Counts, confidence: float = 0.95, method: str = "newcombe"
) -> Interval:
    """Interval for treatment rate - control rate: Newcombe's hybrid score (method 10 of
    Newcombe 1998, good even with few conversions) or the unpooled Wald interval."""
    p_c, p_t = control.rate, treatment.rate
    difference = p_t - p_c
    if method == "wald":
        z = _z(confidence)
        se = math.sqrt(
            p_c * (1 - p_c) / max(control.exposures, 1)
            + p_t * (1 - p_t) / max(treatment.exposures, 1)
        )
        return Interval(difference, difference - z * se, difference + z * se, confidence, "wald")
    if method != "newcombe":
        raise ValueError(f"unknown interval method {method!r}; use 'newcombe' or 'wald'")
    low_t, high_t = wilson_interval(treatment, confidence)
    low_c, high_c = wilson_interval(control, confidence)
    lower = difference - math.sqrt((p_t - low_t) ** 2 + (high_c - p_c) ** 2)
    upper = difference + math.sqrt((high_t - p_t) ** 2 + (p_c - low_c) ** 2)
    return Interval(difference, lower, upper, confidence, "newcombe")


def relative_lift_interval(
    control: Counts, treatment: Counts, confidence: float = 0.95
) -> Interval:
    """Interval for treatment rate / control rate - 1 by the delta method on log(ratio).
    Undefined (NaN) until both arms have at least one conversion."""
    if control.conversions == 0 or treatment.conversions == 0:
        return Interval(NAN, NAN, NAN, confidence, "log-ratio delta method")
    ratio = treatment.rate / control.rate
    se_log = math.sqrt(
        1 / treatment.conversions
        - 1 / treatment.exposures
        + 1 / control.conversions
        - 1 / control.exposures
    )
    z = _z(confidence)
    return Interval(
        ratio - 1,
        ratio * math.exp(-z * se_log) - 1,
        ratio * math.exp(z * se_log) - 1,
        confidence,
        "log-ratio delta method",
    )


def _beta(counts: Counts) -> tuple[float, float]:
    # Posterior of a Beta(1, 1) prior after the counts.
    return (1.0 + counts.conversions, 1.0 + counts.exposures - counts.conversions)


def _expected_shortfall(x: np.ndarray, a: float, b: float) -> np.ndarray:
    # E[max(x - P, 0)] for P ~ Beta(a, b): x F(x) - E[P] F_{Beta(a + 1, b)}(x).
    from scipy import special

    return x * special.betainc(a, b, x) - a / (a + b) * special.betainc(a + 1, b, x)


@cache
def _legendre() -> tuple[np.ndarray, np.ndarray]:
    # The 512 Gauss-Legendre nodes and weights, computed once, with the first integral.
    import numpy as np

    return np.polynomial.legendre.leggauss(512)


def _integral_over(a: float, b: float, times: Callable[[np.ndarray], np.ndarray]) -> float:
    """∫ Beta(a, b) density(x) * times(x) dx by Gauss-Legendre over where that density has
    mass (its 1e-12 and 1 - 1e-12 quantiles): each integral runs over its own posterior, so a
    narrow posterior of a large arm is never missed by a grid sized for a small one."""
    import numpy as np
    from scipy import special

    nodes, weights = _legendre()
    low = float(special.betaincinv(a, b, 1e-12))
    high = float(special.betaincinv(a, b, 1 - 1e-12))
    x = low + (high - low) * (nodes + 1) / 2
    log_pdf = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - special.betaln(a, b)
    return float((high - low) / 2 * np.sum(weights * np.exp(log_pdf) * times(x)))


def beta_binomial(control: Counts, treatment: Counts) -> BayesResult:
    """P(treatment rate > control rate) and each arm's expected loss, by deterministic
    numerical integration over the Beta posteriors (no Monte Carlo noise)."""
    from scipy import special

    a_c, b_c = _beta(control)
    a_t, b_t = _beta(treatment)
    beats = _integral_over(a_t, b_t, lambda x: special.betainc(a_c, b_c, x))
    # Loss of choosing treatment: E[max(C - T, 0)] = ∫ f_C(x) E[max(x - T, 0)] dx; and back.
    loss_t = _integral_over(a_c, b_c, lambda x: _expected_shortfall(x, a_t, b_t))
    loss_c = _integral_over(a_t, b_t, lambda x: _expected_shortfall(x, a_c, b_c))
    return BayesResult(min(max(beats, 0.0), 1.0), max(loss_t, 0.0), max(loss_c, 0.0))


def probability_best(arms: Sequence[Counts]) -> tuple[float, ...]:
    """Each arm's posterior probability of having the highest rate (Beta(1, 1) priors):
    P(i best) = ∫ f_i(x) * prod over j != i of F_j(x) dx, integrated numerically."""
    import numpy as np
    from scipy import special

    params = [_beta(arm) for arm in arms]

    def others_below(i: int) -> Callable[[np.ndarray], np.ndarray]:
        def cdf_product(x: np.ndarray) -> np.ndarray:
            result = np.ones_like(x)
            for j, (a, b) in enumerate(params):
                if j != i:
                    result = result * special.betainc(a, b, x)
            return result

        return cdf_product

    raw = [_integral_over(a, b, others_below(i)) for i, (a, b) in enumerate(params)]
    total = sum(raw)
    return tuple(r / total for r in raw)  # removes the quadrature's last-digit drift


def _target(baseline: float, mde: float, relative: bool) -> float:
    target = baseline * (1 + mde) if relative else baseline + mde
    if not 0 < baseline < 1 or not 0 < target < 1 or target == baseline:
        raise ValueError(
            f"need 0 < baseline, target < 1 and a non-zero effect ({baseline} -> {target})"
        )
    return target


def sample_size(
    baseline: float,
    mde: float,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
) -> SampleSize:
    """Visitors per arm for a two-sided two-proportion z-test (the normal approximation of
    Fleiss, Levin & Paik 2003, ch. 4, without continuity correction): pooled variance under
    the null, unpooled under the alternative. `mde` is absolute (0.01 = one point) or relative (0.1 = +10%)."""
    from scipy import stats as scipy_stats

    target = _target(baseline, mde, relative)
    z_alpha = float(scipy_stats.norm.ppf(1 - alpha / 2))
    z_beta = float(scipy_stats.norm.ppf(power))
    mean = (baseline + target) / 2
    numerator = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        baseline * (1 - baseline) + target * (1 - target)
    )
    per_arm = math.ceil(numerator**2 / (target - baseline) ** 2)
    return SampleSize(per_arm, 2 * per_arm, baseline, target, alpha, power)


def power(
    baseline: float, mde: float, per_arm: int, relative: bool = False, alpha: float = 0.05
) -> float:
    """Power of the two-sided pooled z-test with `per_arm` visitors in each arm (the inverse
    of `sample_size`, ignoring the negligible far rejection tail)."""
    from scipy import stats as scipy_stats

    target = _target(baseline, mde, relative)
    z_alpha = float(scipy_stats.norm.ppf(1 - alpha / 2))
    mean = (baseline + target) / 2
    null_sd = math.sqrt(2 * mean * (1 - mean))
    alternative_sd = math.sqrt(baseline * (1 - baseline) + target * (1 - target))
    z = (abs(target - baseline) * math.sqrt(per_arm) - z_alpha * null_sd) / alternative_sd
    return float(scipy_stats.norm.cdf(z))


def srm_check(
    exposures: Sequence[int], weights: Sequence[float], threshold: float = 0.001
) -> SrmResult:
    """Chi-square goodness of fit of observed exposures to the configured weights; flagged
    when p < threshold (0.001, strict because the check runs at every look)."""
    if len(exposures) != len(weights) or len(exposures) < 2:
        raise ValueError("need one weight per arm and at least two arms")
    total = sum(exposures)
    weight_sum = float(sum(weights))
    expected = tuple(total * w / weight_sum for w in weights)
    if total == 0:
        return SrmResult(tuple(exposures), expected, 0.0, 1.0, False)
    statistic = sum((o - e) ** 2 / e for o, e in zip(exposures, expected, strict=True) if e > 0)
    if any(e == 0 and o > 0 for o, e in zip(exposures, expected, strict=True)):
        statistic = math.inf  # visitors in an arm that should get none
    from scipy import stats as scipy_stats

    p_value = float(scipy_stats.chi2.sf(statistic, len(exposures) - 1))
    return SrmResult(tuple(exposures), expected, statistic, p_value, p_value < threshold)


def compare(control: Counts, treatment: Counts, confidence: float = 0.95) -> Comparison:
    """One arm against its baseline: z-test, both lift intervals and the Bayesian reading."""
    return Comparison(
        control,
        treatment,
        two_proportion_z_test(control, treatment),
        absolute_lift_interval(control, treatment, confidence),
        relative_lift_interval(control, treatment, confidence),
        beta_binomial(control, treatment),
    )


def personalization_lift(
    personalized: Counts, holdout: Counts, confidence: float = 0.95
) -> Comparison:
    """Lift of personalization for one goal: personalized visitors against the global holdout
    (issue 9 item 7); the holdout plays control."""
    return compare(holdout, personalized, confidence)
