"""Fixed-horizon statistics against published worked examples and independent computations.

Each published figure is quoted with its source; where no published figure was at hand the
test says which independent computation it checks against instead.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as scipy_stats

from tailored.core.stats import (
    Counts,
    absolute_lift_interval,
    beta_binomial,
    chi_square_test,
    compare,
    pairwise_vs_control,
    personalization_lift,
    power,
    probability_best,
    relative_lift_interval,
    sample_size,
    srm_check,
    two_proportion_z_test,
    wilson_interval,
)

# Newcombe, R. G. (1998). "Interval estimation for the difference between independent
# proportions: comparison of eleven methods." Statistics in Medicine 17:873-890, Table II,
# method 10 (score interval, no continuity correction), examples (a), (b) and (d), printed to
# 4 decimals. Written here as (treatment, control) = (first, second sample).
NEWCOMBE_METHOD_10 = [
    ((56, 70), (48, 80), (0.0524, 0.3339)),  # example (a)
    ((9, 10), (3, 10), (0.1705, 0.8090)),  # example (b)
    ((5, 56), (0, 29), (-0.0381, 0.1926)),  # example (d)
]


@pytest.mark.parametrize(("treatment", "control", "expected"), NEWCOMBE_METHOD_10)
def test_newcombe_1998_method_10(treatment, control, expected):
    interval = absolute_lift_interval(Counts(*control), Counts(*treatment))
    assert (round(interval.lower, 4), round(interval.upper, 4)) == expected


def test_agresti_physicians_health_study_difference():
    # Agresti, A. (2007). "An Introduction to Categorical Data Analysis", 2nd ed., Section 2.2.2
    # (Table 2.3, Physicians' Health Study): MI in 189/11034 on placebo and 104/11037 on
    # aspirin; difference of proportions 0.0077 with 95% Wald interval (0.005, 0.011).
    aspirin, placebo = Counts(104, 11037), Counts(189, 11034)
    interval = absolute_lift_interval(aspirin, placebo, method="wald")
    assert round(interval.estimate, 4) == 0.0077
    assert (round(interval.lower, 3), round(interval.upper, 3)) == (0.005, 0.011)


def test_relative_lift_matches_moore_mccabe_example():
    # Moore, McCabe & Craig (2017). "Introduction to the Practice of Statistics", 9th ed.,
    # Example 8.18 (aspirin and blood clots): 45/411 major events on aspirin, 73/411 on placebo;
    # relative risk 0.6164 with 95% interval 0.4364 to 0.8707 (log relative risk, delta method).
    interval = relative_lift_interval(Counts(73, 411), Counts(45, 411))
    assert round(interval.estimate + 1, 4) == 0.6164
    assert (round(interval.lower + 1, 4), round(interval.upper + 1, 4)) == (0.4364, 0.8707)


def test_wilson_interval_matches_its_closed_form_by_root_finding():
    # Independent check: Wilson's bounds are the p0 where |p - p0| / sqrt(p0 q0 / n) = z.
    counts, z = Counts(7, 40), scipy_stats.norm.ppf(0.975)
    roots = np.roots([1 + z * z / 40, -(2 * 7 / 40 + z * z / 40), (7 / 40) ** 2])
    assert wilson_interval(counts) == pytest.approx(tuple(sorted(roots)), abs=1e-12)


def test_z_test_squared_is_the_pearson_chi_square():
    # Independent check: for a 2 x 2 table z**2 equals Pearson's X**2 (scipy, no correction).
    control, treatment = Counts(104, 11037), Counts(189, 11034)
    test = two_proportion_z_test(control, treatment)
    table = [[104, 11037 - 104], [189, 11034 - 189]]
    x2, p, _, _ = scipy_stats.chi2_contingency(table, correction=False)
    assert test.z**2 == pytest.approx(x2, rel=1e-12)
    assert test.p_value == pytest.approx(p, rel=1e-9)
    assert test.difference > 0 and test.z > 0


def test_chi_square_for_three_arms_matches_scipy():
    arms = [Counts(120, 1000), Counts(150, 1000), Counts(90, 800)]
    table = [[a.conversions, a.exposures - a.conversions] for a in arms]
    x2, p, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
    result = chi_square_test(arms)
    assert (result.statistic, result.p_value, result.dof) == (
        pytest.approx(x2),
        pytest.approx(p),
        dof,
    )


def test_pairwise_comparisons_are_holm_corrected():
    arms = [Counts(100, 1000), Counts(140, 1000), Counts(112, 1000)]
    pairs = pairwise_vs_control(arms)
    raw = [pair.test.p_value for pair in pairs]
    # Holm by hand for two p-values: the smaller doubled, the larger kept (made monotone).
    small, large = sorted(raw)
    expected = {small: min(1, 2 * small), large: max(min(1, 2 * small), large)}
    assert [pair.adjusted_p_value for pair in pairs] == [pytest.approx(expected[p]) for p in raw]
    assert [pair.arm for pair in pairs] == [1, 2]
    assert pairs[0].significant and not pairs[1].significant


def test_degenerate_counts_do_not_raise():
    assert two_proportion_z_test(Counts(0, 0), Counts(0, 10)).p_value == 1.0
    assert two_proportion_z_test(Counts(0, 10), Counts(0, 10)).p_value == 1.0
    assert chi_square_test([Counts(0, 10), Counts(0, 10)]).p_value == 1.0
    assert math.isnan(relative_lift_interval(Counts(0, 10), Counts(3, 10)).lower)
    with pytest.raises(ValueError):
        Counts(5, 3)


def _evan_miller_prob_b_beats_a(a: Counts, b: Counts) -> float:
    """Closed form for P(p_B > p_A) with integer Beta parameters, from Evan Miller (2014),
    "Formulas for Bayesian A/B Testing" (evanmiller.org), computed in log space."""
    alpha_a, beta_a = 1 + a.conversions, 1 + a.exposures - a.conversions
    alpha_b, beta_b = 1 + b.conversions, 1 + b.exposures - b.conversions
    i = np.arange(alpha_b)
    log_terms = (
        special.betaln(alpha_a + i, beta_a + beta_b)
        - np.log(beta_b + i)
        - special.betaln(1 + i, beta_b)
        - special.betaln(alpha_a, beta_a)
    )
    return float(np.exp(log_terms).sum())


@pytest.mark.parametrize(
    ("control", "treatment"),
    [((100, 1000), (120, 1000)), ((3, 10), (9, 10)), ((40, 2000), (38, 1900)), ((1, 50), (0, 60))],
)
def test_probability_to_beat_control_matches_the_closed_form(control, treatment):
    control, treatment = Counts(*control), Counts(*treatment)
    result = beta_binomial(control, treatment)
    assert result.prob_treatment_beats_control == pytest.approx(
        _evan_miller_prob_b_beats_a(control, treatment), abs=1e-9
    )


def test_expected_loss_matches_seeded_monte_carlo():
    # Independent check by simulation: 2 million posterior draws, seeded.
    control, treatment = Counts(100, 1000), Counts(120, 1000)
    rng = np.random.default_rng(7)
    c = rng.beta(101, 901, 2_000_000)
    t = rng.beta(121, 881, 2_000_000)
    result = beta_binomial(control, treatment)
    assert result.expected_loss_treatment == pytest.approx(np.maximum(c - t, 0).mean(), rel=0.03)
    assert result.expected_loss_control == pytest.approx(np.maximum(t - c, 0).mean(), rel=0.01)


def test_probability_best_matches_monte_carlo_and_the_two_arm_case():
    arms = [Counts(100, 1000), Counts(120, 1000), Counts(115, 1000)]
    best = probability_best(arms)
    rng = np.random.default_rng(8)
    draws = np.column_stack(
        [rng.beta(1 + a.conversions, 1 + a.exposures - a.conversions, 1_000_000) for a in arms]
    )
    simulated = np.bincount(draws.argmax(axis=1), minlength=3) / 1_000_000
    assert best == pytest.approx(tuple(simulated), abs=0.003)
    assert sum(best) == pytest.approx(1.0)
    two = probability_best(arms[:2])
    assert two[1] == pytest.approx(
        beta_binomial(arms[0], arms[1]).prob_treatment_beats_control, abs=1e-9
    )


def test_bayes_with_no_data_is_the_uniform_prior():
    # Two independent uniforms: P(T > C) = 1/2 and E[max(C - T, 0)] = 1/6 exactly.
    result = beta_binomial(Counts(0, 0), Counts(0, 0))
    assert result.prob_treatment_beats_control == pytest.approx(0.5, abs=1e-9)
    assert result.expected_loss_treatment == pytest.approx(1 / 6, abs=1e-9)


def test_sample_size_by_the_fleiss_formula_worked_by_hand():
    # The usual normal-approximation formula (Fleiss, Levin & Paik, "Statistical Methods for
    # Rates and Proportions", 3rd ed. 2003, chapter 4, without continuity correction): pooled
    # variance under the null, unpooled under the alternative. No published table is quoted;
    # worked by hand for 20% -> 25%, alpha 0.05 two-sided, power 0.8 (z = 1.959964, 0.841621):
    # n = (1.959964 * sqrt(2 * 0.225 * 0.775) + 0.841621 * sqrt(0.16 + 0.1875))**2 / 0.05**2
    #   = (1.157458 + 0.496128)**2 / 0.0025 = 1093.74, rounded up to 1094.
    result = sample_size(0.20, 0.05)
    assert result.per_arm == 1094 and result.total == 2188
    assert sample_size(0.20, 0.25, relative=True).per_arm == 1094
    assert power(0.20, 0.05, 1094) == pytest.approx(0.80, abs=0.001)
    assert power(0.20, 0.05, 4000) > 0.99


def test_srm_flags_a_broken_split_only():
    fine = srm_check([50_100, 49_900], [1, 1])
    assert not fine.flagged and fine.p_value > 0.5
    broken = srm_check([50_000, 48_500], [1, 1])  # 1.5% missing from one arm
    assert broken.flagged and broken.p_value < 1e-5
    weighted = srm_check([20_150, 79_850], [1, 4])
    assert not weighted.flagged and weighted.expected == (20_000.0, 80_000.0)
    x2, p = scipy_stats.chisquare([50_000, 48_500])
    assert (broken.statistic, broken.p_value) == (pytest.approx(x2), pytest.approx(p))


def test_personalization_lift_uses_the_holdout_as_control():
    personalized, holdout = Counts(540, 9000), Counts(45, 1000)
    lift = personalization_lift(personalized, holdout)
    assert lift == compare(holdout, personalized)
    assert lift.test.difference == pytest.approx(0.06 - 0.045)
    assert lift.relative_lift.estimate == pytest.approx(0.06 / 0.045 - 1)
    assert lift.absolute_lift.lower < lift.test.difference < lift.absolute_lift.upper
