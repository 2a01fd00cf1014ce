"""Seeded Monte Carlo checks of the statistics' guarantees, vectorized with numpy.
Kept together and fast (a few seconds in all)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tailored.core.bandits import equal_split, simulate_regret, thompson_weights
from tailored.core.cuped import MomentSums, cuped
from tailored.core.sequential import (
    always_valid_series,
    mixture_log_likelihood_ratio,
    mixture_tau2,
)
from tailored.core.stats import Counts, sample_size

EXPERIMENTS, LOOKS, PER_LOOK, RATE, ALPHA = 2000, 20, 500, 0.10, 0.05


@pytest.fixture(scope="module")
def aa_experiments():
    """Cumulative conversions of 2,000 A/A experiments, both arms at 10%, looked at 20 times
    after every 500 visitors per arm: arrays (control, treatment, visitors per arm)."""
    rng = np.random.default_rng(20260101)
    conversions = rng.binomial(PER_LOOK, RATE, size=(2, EXPERIMENTS, LOOKS)).cumsum(axis=2)
    visitors = PER_LOOK * np.arange(1, LOOKS + 1)
    return conversions[0], conversions[1], visitors


def _msprt_rejects(control, treatment, n):
    p_c, p_t = control / n, treatment / n
    variance = p_c * (1 - p_c) / n + p_t * (1 - p_t) / n
    log_lr = mixture_log_likelihood_ratio(
        p_t - p_c, variance, mixture_tau2(variance, 2 * n, ALPHA, 5000)
    )
    return log_lr >= math.log(1 / ALPHA)  # p = 1 / Lambda <= alpha


def test_peeking_with_msprt_keeps_the_false_positive_rate(aa_experiments):
    # Johari et al. (2017): stopping at the first look where the always-valid p <= alpha keeps
    # the type I error at alpha whatever the looks. 2,000 runs: 0.055 leaves Monte Carlo slack.
    control, treatment, n = aa_experiments
    false_positive_rate = _msprt_rejects(control, treatment, n).any(axis=1).mean()
    assert false_positive_rate <= 0.055


def test_peeking_with_naive_z_tests_inflates_the_false_positive_rate(aa_experiments):
    # The problem the mSPRT solves: a fixed-horizon z-test at every look rejects far too often.
    control, treatment, n = aa_experiments
    pooled = (control + treatment) / (2 * n)
    z = (treatment - control) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    assert (np.abs(z) > 1.959964).any(axis=1).mean() > 0.10
    # At the final look alone, the same z-test is fine.
    assert (np.abs(z[:, -1]) > 1.959964).mean() == pytest.approx(0.05, abs=0.015)


def test_the_vectorized_simulation_is_the_library_function(aa_experiments):
    control, treatment, n = aa_experiments
    for run in range(5):
        series = [
            (Counts(int(c), int(v)), Counts(int(t), int(v)))
            for c, t, v in zip(control[run], treatment[run], n, strict=True)
        ]
        library = [r.conclusive for r in always_valid_series(series)]
        assert library == list(
            np.maximum.accumulate(_msprt_rejects(control[run], treatment[run], n))
        )


def test_thompson_sampling_has_less_regret_than_an_equal_split():
    # Chapelle & Li (2011) and Russo et al. (2018) show Thompson sampling's low regret; here on
    # known rates, batched re-weighting after every 200 visitors, same seed for both policies.
    rates = [0.04, 0.05, 0.065]

    def thompson(counts):
        return thompson_weights(
            counts, floor=0.01, draws=2000, seed=sum(c.exposures for c in counts)
        )

    bandit = simulate_regret(rates, thompson, visitors_per_round=200, rounds=50, seed=5)
    fixed = simulate_regret(rates, equal_split, visitors_per_round=200, rounds=50, seed=5)
    assert fixed.regret == pytest.approx(10_000 * ((0.065 - 0.04) + (0.065 - 0.05)) / 3, rel=0.05)
    assert bandit.regret < fixed.regret / 2
    assert bandit.final_weights[2] > 0.8


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_cuped_variance_reduction_is_rho_squared(rho):
    # Deng et al. (2013), section 3: with theta = Cov(Y, X) / Var(X) the variance falls by the
    # factor 1 - rho^2. Simulated (X, Y) with correlation rho and a true effect of 0.1.
    rng = np.random.default_rng(int(rho * 100))
    n = 20_000
    sums = []
    for effect in (0.0, 0.1):
        x = rng.normal(0, 1, n)
        y = 1 + effect + rho * x + math.sqrt(1 - rho * rho) * rng.normal(0, 1, n)
        sums.append(MomentSums(n, y.sum(), x.sum(), (y * y).sum(), (x * x).sum(), (x * y).sum()))
    result = cuped(*sums)
    assert result.variance_reduction == pytest.approx(rho * rho, abs=0.02)
    assert result.theta == pytest.approx(rho, abs=0.02)
    assert result.difference == pytest.approx(0.1, abs=4 * result.standard_error)


def test_the_sample_size_delivers_its_power():
    # Independent check of the formula: 4,000 simulated experiments at the computed size.
    plan = sample_size(0.20, 0.05, alpha=0.05, power=0.8)
    rng = np.random.default_rng(99)
    control = rng.binomial(plan.per_arm, 0.20, 4000) / plan.per_arm
    treatment = rng.binomial(plan.per_arm, 0.25, 4000) / plan.per_arm
    pooled = (control + treatment) / 2
    z = (treatment - control) / np.sqrt(pooled * (1 - pooled) * 2 / plan.per_arm)
    assert (np.abs(z) > 1.959964).mean() == pytest.approx(0.80, abs=0.02)
