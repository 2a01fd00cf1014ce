"""Multiple-comparison corrections, generic over a list of p-values (issue 9 item 3).

    holm(p_values, alpha=0.05) -> Adjusted
    benjamini_hochberg(p_values, q=0.05) -> Adjusted

Holm (1979) controls the family-wise error rate (the chance of any false winner) and suits a
few arms compared with control. Benjamini & Hochberg (1995) controls the false discovery rate
(the expected share of false winners among the declared ones) and suits many goals or many
segments read at once. Adjusted p-values come back in the input order; compare each to the same
level the procedure was run at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Adjusted:
    """Adjusted p-values and rejections, in the order the p-values were given."""

    p_values: tuple[float, ...]
    adjusted: tuple[float, ...]
    rejected: tuple[bool, ...]
    level: float
    method: str


def _checked(p_values: Sequence[float]) -> list[float]:
    values = [float(p) for p in p_values]
    if any(not 0.0 <= p <= 1.0 for p in values):
        raise ValueError("p-values must lie in [0, 1]")
    return values


def holm(p_values: Sequence[float], alpha: float = 0.05) -> Adjusted:
    """Holm's step-down procedure: the i-th smallest p (from 0) is multiplied by m - i, then
    made monotone from the smallest up; reject where the adjusted p is at most alpha."""
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=values.__getitem__)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return Adjusted(
        tuple(values), tuple(adjusted), tuple(a <= alpha for a in adjusted), alpha, "holm"
    )


def benjamini_hochberg(p_values: Sequence[float], q: float = 0.05) -> Adjusted:
    """Benjamini-Hochberg step-up: the i-th smallest p (from 1) becomes p * m / i, made monotone
    from the largest down; reject where the adjusted p is at most q (the target FDR)."""
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=values.__getitem__, reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, index in enumerate(order):
        rank = m - position  # 1-based rank from the smallest
        running = min(running, values[index] * m / rank)
        adjusted[index] = running
    return Adjusted(
        tuple(values), tuple(adjusted), tuple(a <= q for a in adjusted), q, "benjamini-hochberg"
    )
