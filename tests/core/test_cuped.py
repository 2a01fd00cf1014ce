"""CUPED from sufficient statistics (the large simulation is in test_simulations.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.core.cuped import MomentSums, cuped


def test_sums_from_arrays_merge_and_means():
    sums = MomentSums.from_arrays([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])
    assert sums == MomentSums(3, 6.0, 2.0, 14.0, 2.0, 5.0)
    assert (sums + sums).n == 6 and sums.mean_y == 2.0


def test_theta_is_the_pooled_regression_slope():
    # Independent check: with Y = 2 X + noise in both arms, theta is numpy's within-arm
    # pooled covariance over variance, close to 2.
    rng = np.random.default_rng(11)
    x_c, x_t = rng.normal(10, 3, 4000), rng.normal(10, 3, 4000)
    y_c, y_t = 2 * x_c + rng.normal(0, 1, 4000), 2 * x_t + 0.5 + rng.normal(0, 1, 4000)
    result = cuped(MomentSums.from_arrays(y_c, x_c), MomentSums.from_arrays(y_t, x_t))
    covariance = np.cov(y_c, x_c)[0, 1] + np.cov(y_t, x_t)[0, 1]
    assert result.theta == pytest.approx(covariance / (np.var(x_c, ddof=1) + np.var(x_t, ddof=1)))
    assert result.theta == pytest.approx(2.0, abs=0.02)
    assert result.difference == pytest.approx(0.5, abs=0.1)
    assert result.standard_error < result.unadjusted_standard_error / 3
    assert result.lower < result.difference < result.upper and result.p_value < 1e-6


def test_an_unrelated_covariate_changes_nothing_much():
    rng = np.random.default_rng(12)
    y_c, y_t = rng.normal(5, 1, 3000), rng.normal(5, 1, 3000)
    x_c, x_t = rng.normal(0, 1, 3000), rng.normal(0, 1, 3000)
    result = cuped(MomentSums.from_arrays(y_c, x_c), MomentSums.from_arrays(y_t, x_t))
    assert abs(result.variance_reduction) < 0.01
    assert result.difference == pytest.approx(result.unadjusted_difference, abs=0.02)


def test_too_few_visitors_are_refused():
    with pytest.raises(ValueError):
        cuped(MomentSums.from_arrays([1.0], [1.0]), MomentSums.from_arrays([1.0, 2.0], [1.0, 2.0]))
