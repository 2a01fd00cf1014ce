"""Thompson sampling weights (the regret simulation is in test_simulations.py)."""

from __future__ import annotations

import pytest

from tailored.core.bandits import equal_split, thompson_weights
from tailored.core.stats import Counts


def test_weights_sum_to_one_and_respect_the_floor():
    arms = [Counts(10, 1000), Counts(80, 1000), Counts(30, 1000)]
    weights = thompson_weights(arms, floor=0.05)
    assert sum(weights) == pytest.approx(1.0)
    assert min(weights) >= 0.05 - 1e-12
    assert weights[1] == pytest.approx(1 - 2 * 0.05, abs=1e-3)  # arm 1 is clearly best


def test_weights_are_deterministic_for_a_seed():
    arms = [Counts(20, 200), Counts(24, 200)]
    assert thompson_weights(arms, seed=3) == thompson_weights(arms, seed=3)


def test_weights_follow_the_probability_of_being_best():
    # Two arms: P(best) is P(B > A), which is about 0.5 for equal data and 0.5 with no data.
    even = thompson_weights([Counts(50, 500), Counts(50, 500)], floor=0.0, draws=200_000)
    assert even[0] == pytest.approx(0.5, abs=0.01)
    fresh = thompson_weights([Counts(0, 0)] * 4, floor=0.0, draws=200_000)
    assert fresh == pytest.approx((0.25,) * 4, abs=0.01)


def test_a_floor_too_large_for_the_arms_is_refused():
    with pytest.raises(ValueError, match="nothing to allocate"):
        thompson_weights([Counts(0, 0)] * 3, floor=0.4)
    assert equal_split([Counts(0, 0)] * 4) == (0.25,) * 4
