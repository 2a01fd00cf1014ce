"""The pure statistics of the Insights report and alerts, against published worked examples and
SciPy's implementations."""

from __future__ import annotations

import math

import pytest

from tailored.core.insights import (
    CellWindow,
    benjamini_hochberg,
    binomial_cdf,
    binomial_two_sided,
    find_anomalies,
    histogram,
    lift,
    population_stability_index,
    rate_change_p_value,
    volume_drop,
    wilson_interval,
)


def test_wilson_matches_newcombes_worked_example():
    # Newcombe (1998), Statistics in Medicine 17:857, example: 81 of 263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_wilson_stays_inside_zero_and_one():
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 10)[0] >= 0 and wilson_interval(10, 10)[1] <= 1
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_lift_is_relative_and_unknown_without_a_baseline():
    assert lift(0.12, 0.10) == pytest.approx(0.2)
    assert lift(0.12, 0.0) is None and lift(None, 0.1) is None


@pytest.mark.parametrize(("k", "n", "p"), [(3, 10, 0.5), (0, 20, 0.1), (120, 4000, 0.05), (900, 1000, 0.88), (7, 12, 0.3)])
def test_the_binomial_cdf_is_exact(k, n, p):
    stats = pytest.importorskip("scipy.stats")
    assert binomial_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), rel=1e-9)


def test_the_two_sided_p_value_doubles_the_smaller_tail():
    # 3 of 10 at 0.5: P(X <= 3) = 176/1024, doubled.
    assert binomial_two_sided(3, 10, 0.5) == pytest.approx(2 * 176 / 1024)
    assert binomial_two_sided(5, 10, 0.5) == 1.0


def test_benjamini_hochberg_matches_the_papers_example():
    # Benjamini and Hochberg (1995), section 4: 15 p-values at q = 0.05 reject the first four.
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0]
    assert benjamini_hochberg(p, 0.05) == [0, 1, 2, 3]
    assert benjamini_hochberg(list(reversed(p)), 0.05) == [11, 12, 13, 14]


def test_psi_of_a_hand_computed_shift():
    expected, actual = [50, 50], [25, 75]
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert population_stability_index(expected, actual) == pytest.approx(by_hand)
    assert population_stability_index([1, 2, 3], [10, 20, 30]) == pytest.approx(0.0)


def test_histogram_bins_scores_of_zero_to_one():
    assert histogram([0.0, 0.05, 0.5, 0.99, 1.0], bins=10) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]


def test_a_forty_percent_drop_in_a_busy_cell_is_found_and_quiet_cells_are_not_tested():
    busy = CellWindow("busy", trials=4000, successes=120, baseline_trials=16000, baseline_successes=800)
    quiet = CellWindow("quiet", trials=50, successes=0, baseline_trials=200, baseline_successes=10)
    steady = CellWindow("steady", trials=4000, successes=205, baseline_trials=16000, baseline_successes=800)
    findings = find_anomalies([busy, quiet, steady], q=0.001, min_trials=200, min_expected=10, min_change=0.2)
    assert [(f.key, f.direction) for f in findings] == [("busy", "drop")]
    assert findings[0].observed == pytest.approx(0.03) and findings[0].baseline == pytest.approx(0.05)
    assert rate_change_p_value(busy) < 1e-6


def test_a_significant_but_small_change_is_not_an_alert():
    huge = CellWindow("huge", trials=10**6, successes=46_000, baseline_trials=4 * 10**6, baseline_successes=200_000)
    assert rate_change_p_value(huge) < 1e-9
    assert find_anomalies([huge], q=0.001, min_trials=200, min_expected=10, min_change=0.2) == []


def test_volume_drop_compares_with_the_baselines_mean():
    assert volume_drop(40, [100, 100, 0, 100], 0.5) == pytest.approx(0.4)
    assert volume_drop(80, [100, 100], 0.5) is None
    assert volume_drop(0, [], 0.5) is None
