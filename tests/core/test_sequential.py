"""Always-valid (mSPRT) results: identities with the published formulas and look bookkeeping.
The A/A peeking simulation is in test_simulations.py."""

from __future__ import annotations

import math

import pytest

from tailored.core.sequential import (
    always_valid,
    always_valid_series,
    first_conclusive_look,
    mixture_log_likelihood_ratio,
    mixture_tau2,
)
from tailored.core.stats import Counts, absolute_lift_interval


def test_interval_is_the_howard_2021_normal_mixture_boundary():
    # Howard, Ramdas, McAuliffe & Sekhon (2021), "Time-uniform, nonparametric, nonasymptotic
    # confidence sequences", Ann. Statist. 49(2), the normal-mixture boundary in the two-sided
    # form GrowthBook documents: half-width = sqrt(s2) * sqrt(2 (N rho^2 + 1) / (N^2 rho^2)
    # * log(sqrt(N rho^2 + 1) / alpha)), s2 = N * Var(difference),
    # rho = sqrt((-2 log alpha + log(-2 log alpha + 1)) / tuning_n). Computed independently here.
    control, treatment = Counts(480, 5000), Counts(560, 5000)
    result = always_valid(control, treatment, alpha=0.05, tuning_n=5000)
    n_total, alpha = 10_000, 0.05
    variance = 0.096 * 0.904 / 5000 + 0.112 * 0.888 / 5000
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / 5000
    s2 = n_total * variance
    half = math.sqrt(s2) * math.sqrt(
        2
        * (n_total * rho2 + 1)
        / (n_total**2 * rho2)
        * math.log(math.sqrt(n_total * rho2 + 1) / alpha)
    )
    assert result.upper - result.difference == pytest.approx(half, rel=1e-12)
    assert result.difference - result.lower == pytest.approx(half, rel=1e-12)


def test_p_value_is_one_over_the_johari_2017_mixture_likelihood_ratio():
    # Johari, Koomen, Pekelis & Walsh (2017), "Peeking at A/B Tests", KDD, the normal-mixture
    # likelihood ratio: Lambda = sqrt(V / (V + tau2)) exp(tau2 d^2 / (2 V (V + tau2))).
    control, treatment = Counts(480, 5000), Counts(560, 5000)
    variance = 0.096 * 0.904 / 5000 + 0.112 * 0.888 / 5000
    tau2 = mixture_tau2(variance, 10_000, 0.05, 5000)
    d = 0.016
    lam = math.sqrt(variance / (variance + tau2)) * math.exp(
        tau2 * d * d / (2 * variance * (variance + tau2))
    )
    assert mixture_log_likelihood_ratio(d, variance, tau2) == pytest.approx(math.log(lam))
    assert always_valid(control, treatment).p_value == pytest.approx(min(1, 1 / lam))


@pytest.mark.parametrize("treated", [500, 540, 560, 600])
def test_interval_excludes_zero_exactly_when_p_is_below_alpha(treated):
    result = always_valid(Counts(480, 5000), Counts(treated, 5000))
    assert result.conclusive == (result.p_value <= 0.05) == (result.lower > 0 or result.upper < 0)


def test_always_valid_interval_is_wider_than_the_fixed_horizon_one():
    control, treatment = Counts(480, 5000), Counts(560, 5000)
    sequential = always_valid(control, treatment)
    fixed = absolute_lift_interval(control, treatment, method="wald")
    assert sequential.lower < fixed.lower and sequential.upper > fixed.upper


def _series(rate_c: float, rate_t: float, looks: int, per_look: int = 1000):
    return [
        (
            Counts(round(rate_c * per_look * i), per_look * i),
            Counts(round(rate_t * per_look * i), per_look * i),
        )
        for i in range(1, looks + 1)
    ]


def test_first_conclusive_look_and_it_stays_conclusive():
    series = _series(0.10, 0.13, 15)
    index = first_conclusive_look(series)
    results = always_valid_series(series)
    assert index is not None and 0 < index < 15
    assert not results[index - 1].conclusive
    assert all(r.conclusive for r in results[index:])
    p_values = [r.p_value for r in results]
    assert p_values == sorted(p_values, reverse=True)  # a running minimum
    assert all(r.lower <= r.difference <= r.upper for r in results)


def test_no_difference_never_becomes_conclusive():
    assert first_conclusive_look(_series(0.10, 0.10, 20)) is None
    assert first_conclusive_look([]) is None


def test_looks_without_data_are_inconclusive():
    result = always_valid(Counts(0, 0), Counts(0, 0))
    assert result.p_value == 1.0 and not result.conclusive and math.isinf(result.upper)
