"""Factorial analysis of cell counts: effects are contrasts of cell rates."""

from __future__ import annotations

import math

import pytest

from tailored.core.factorial import factorial_effects
from tailored.core.stats import Counts

# A 2 x 2 example worked by hand. Cell rates (headline, button):
#   (0, 0) 100/1000 = 0.10   (1, 0) 120/1000 = 0.12
#   (0, 1) 110/1000 = 0.11   (1, 1) 160/1000 = 0.16
CELLS = {(0, 0): Counts(100, 1000), (1, 0): Counts(120, 1000), (0, 1): Counts(110, 1000), (1, 1): Counts(160, 1000)}  # fmt: skip
# sum of p (1 - p) / n over the cells = (0.09 + 0.1056 + 0.0979 + 0.1344) / 1000 = 0.0004279
CELL_VARIANCE = 0.0004279


def test_two_by_two_worked_by_hand():
    headline, button, both = factorial_effects(["headline", "button"], CELLS)
    # Main effect of headline: mean of (0.12 - 0.10) and (0.16 - 0.11) = 0.035.
    assert headline.name == "headline" and headline.estimate == pytest.approx(0.035)
    # Main effect of button: mean of (0.11 - 0.10) and (0.16 - 0.12) = 0.025.
    assert button.estimate == pytest.approx(0.025)
    # Interaction: headline's effect with the new button minus without = 0.05 - 0.02 = 0.03.
    assert both.name == "headline x button" and both.estimate == pytest.approx(0.03)
    # SEs: contrasts with coefficients +-1/2 (main) and +-1 (interaction) on independent cells.
    assert headline.standard_error == pytest.approx(math.sqrt(CELL_VARIANCE / 4))
    assert both.standard_error == pytest.approx(math.sqrt(CELL_VARIANCE))
    assert headline.z == pytest.approx(0.035 / math.sqrt(CELL_VARIANCE / 4))
    assert headline.p_value < 0.001 < both.p_value
    assert headline.lower < 0.035 < headline.upper


def test_three_factors_give_seven_effects_and_no_interaction_when_additive():
    # Rates 0.1 + 0.02 a + 0.01 b + 0.03 c: main effects recovered, interactions exactly zero.
    cells = {
        (a, b, c): Counts(round(10_000 * (0.1 + 0.02 * a + 0.01 * b + 0.03 * c)), 10_000)
        for a in (0, 1) for b in (0, 1) for c in (0, 1)
    }  # fmt: skip
    effects = {e.name: e.estimate for e in factorial_effects(["a", "b", "c"], cells)}
    assert list(effects) == ["a", "b", "c", "a x b", "a x c", "b x c", "a x b x c"]
    assert (effects["a"], effects["b"], effects["c"]) == pytest.approx((0.02, 0.01, 0.03))
    assert [effects[k] for k in ("a x b", "a x c", "b x c", "a x b x c")] == pytest.approx(
        [0] * 4, abs=1e-12
    )


def test_missing_or_empty_cells_are_refused():
    with pytest.raises(ValueError, match="missing"):
        factorial_effects(["a", "b"], {(0, 0): Counts(1, 10), (1, 0): Counts(1, 10)})
    with pytest.raises(ValueError, match="without exposures"):
        factorial_effects(["a"], {(0,): Counts(0, 0), (1,): Counts(1, 10)})


def test_a_three_level_factor_worked_by_hand():
    # headline (2 levels) x button (3 levels), 1,000 visitors per cell; rates by (headline, button):
    rates = {(0, 0): 0.10, (1, 0): 0.12, (0, 1): 0.11, (1, 1): 0.16, (0, 2): 0.09, (1, 2): 0.13}
    cells = {cell: Counts(round(rate * 1000), 1000) for cell, rate in rates.items()}
    effects = {e.name: e for e in factorial_effects(["headline", "button"], cells)}
    assert list(effects) == [
        "headline",
        "button=1",
        "button=2",
        "headline x button=1",
        "headline x button=2",
    ]
    # headline: mean over the 3 buttons of (0.02, 0.05, 0.04); button=1: mean of (0.01, 0.04);
    # button=2: mean of (-0.01, 0.01); interactions: 0.05 - 0.02 and 0.04 - 0.02.
    estimates = [e.estimate for e in effects.values()]
    assert estimates == pytest.approx([0.11 / 3, 0.025, 0.0, 0.03, 0.02], abs=1e-12)
    variance = sum(r * (1 - r) / 1000 for r in rates.values())
    assert effects["headline"].standard_error == pytest.approx(math.sqrt(variance / 9))
    assert effects["button=2"].levels == (2,)
