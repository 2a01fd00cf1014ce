"""Holm and Benjamini-Hochberg corrections."""

from __future__ import annotations

import pytest

from tailored.core.multiple import benjamini_hochberg, holm

# Benjamini, Y. & Hochberg, Y. (1995). "Controlling the false discovery rate: a practical and
# powerful approach to multiple testing." J. R. Statist. Soc. B 57(1):289-300, Section 4
# (example): 15 p-values from a study of myocardial infarction treatments. At level 0.05 the
# FDR procedure rejects the four smallest, the FWER procedure of Hochberg (1988) only three.
BH_1995_P_VALUES = [
    0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
    0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000,
]  # fmt: skip


def test_benjamini_hochberg_1995_example():
    result = benjamini_hochberg(BH_1995_P_VALUES, 0.05)
    assert result.rejected == tuple([True] * 4 + [False] * 11)


def test_holm_on_the_same_example_rejects_three():
    # Holm, S. (1979). "A simple sequentially rejective multiple test procedure." Scand. J.
    # Statist. 6:65-70: compare the i-th smallest with alpha / (m - i + 1) until one fails;
    # by hand, 0.0019 <= 0.05 / 13 = 0.00385 but 0.0095 > 0.05 / 12 = 0.00417.
    result = holm(BH_1995_P_VALUES, 0.05)
    assert result.rejected == tuple([True] * 3 + [False] * 12)


def test_adjusted_p_values_worked_by_hand_in_input_order():
    p_values = [0.04, 0.01, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    # 0.02, 0.03, 0.06, 0.06.
    assert holm(p_values).adjusted == pytest.approx((0.06, 0.03, 0.06, 0.02))
    # BH: sorted times 4/1, 4/2, 4/3, 4/4 = 0.02, 0.02, 0.04, 0.04 -> monotone from the top.
    assert benjamini_hochberg(p_values).adjusted == pytest.approx((0.04, 0.02, 0.04, 0.02))
    assert benjamini_hochberg(p_values).rejected == (True, True, True, True)


def test_adjusted_values_are_capped_and_validated():
    assert holm([0.6, 0.7]).adjusted == (1.0, 1.0)
    assert benjamini_hochberg([]).adjusted == ()
    with pytest.raises(ValueError):
        holm([1.2])
