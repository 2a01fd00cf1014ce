"""Factorial experiments: main effects and interactions from cell counts (issue 9 item 4).

Public API:

    factorial_effects(factors, cells, confidence=0.95) -> tuple[Effect, ...]

A 2**k factorial experiment crosses k two-level factors (e.g. headline old/new x button
old/new); every visitor lands in one cell. `cells` maps a tuple of levels (0 = the factor's
baseline, 1 = its change), one per factor in `factors` order, to the cell's Counts.

Model: a linear probability model on the cell conversion rates, with every cell weighted
equally (the saturated model, so estimates are contrasts of cell rates). With c(cell) the
product over the effect's factors of (+1 at level 1, -1 at level 0):

    effect(S) = sum over cells of c(cell) * rate(cell) / 2**(k - |S|)

so a main effect is the average, over the other factors' cells, of "rate at 1 - rate at 0", and
a two-factor interaction is the difference of differences (how much A's effect changes when B
is switched on), averaged over the remaining factors. Each cell's rate has variance
p (1 - p) / n; cells are independent, so SE(effect) = sqrt(sum (c / d)**2 p (1 - p) / n), with
a two-sided z-test of zero and a normal interval. Effects come ordered by size of S, then name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product

from scipy import stats as scipy_stats

from .stats import Counts


@dataclass(frozen=True, slots=True)
class Effect:
    """One main effect (one factor) or interaction (several), in rate units."""

    name: str  # "headline" or "headline x button"
    factors: tuple[str, ...]
    estimate: float
    standard_error: float
    lower: float
    upper: float
    z: float
    p_value: float


def _check(factors: Sequence[str], cells: Mapping[tuple[int, ...], Counts]) -> None:
    if not factors or len(set(factors)) != len(factors):
        raise ValueError("need at least one factor, each named once")
    expected = set(product((0, 1), repeat=len(factors)))
    if set(cells) != expected:
        missing = sorted(expected - set(cells))
        raise ValueError(f"need exactly the {len(expected)} cells of levels 0/1; missing {missing}")
    empty = [cell for cell, counts in cells.items() if counts.exposures == 0]
    if empty:
        raise ValueError(f"cells without exposures: {sorted(empty)}")


def _effect(
    members: tuple[int, ...],
    factors: Sequence[str],
    cells: Mapping[tuple[int, ...], Counts],
    z_crit: float,
) -> Effect:
    divisor = 2 ** (len(factors) - len(members))
    estimate = variance = 0.0
    for levels, counts in cells.items():
        sign = math.prod(1 if levels[i] else -1 for i in members)
        rate = counts.rate
        estimate += sign * rate / divisor
        variance += rate * (1 - rate) / counts.exposures / divisor**2
    se = math.sqrt(variance)
    z = estimate / se if se > 0 else 0.0
    p_value = float(2 * scipy_stats.norm.sf(abs(z))) if se > 0 else 1.0
    names = tuple(factors[i] for i in members)
    return Effect(
        " x ".join(names),
        names,
        estimate,
        se,
        estimate - z_crit * se,
        estimate + z_crit * se,
        z,
        p_value,
    )


def factorial_effects(
    factors: Sequence[str],
    cells: Mapping[tuple[int, ...], Counts],
    confidence: float = 0.95,
) -> tuple[Effect, ...]:
    """Every main effect and interaction of a 2**k factorial experiment (see module doc)."""
    _check(factors, cells)
    z_crit = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    return tuple(
        _effect(members, factors, cells, z_crit)
        for size in range(1, len(factors) + 1)
        for members in combinations(range(len(factors)), size)
    )
