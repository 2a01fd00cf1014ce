"""Factorial experiments: main effects and interactions from cell counts (issue 9 item 4).

Public API:

    factorial_effects(factors, cells, confidence=0.95) -> tuple[Effect, ...]

A factorial experiment crosses factors (e.g. headline old/new x button old/new/bold); every
visitor lands in one cell. `cells` maps a tuple of level indices, one per factor in `factors`
order, to the cell's Counts; level 0 is each factor's baseline. Every combination of levels
must be present (a full grid; 2**k cells when every factor has two levels).

Model: a linear probability model on the cell conversion rates, with every cell weighted
equally (the saturated model, so estimates are contrasts of cell rates, in rate units):

- the main effect of factor A at level a is the average, over every combination of the other
  factors' levels, of rate(A = a) - rate(A = 0);
- the interaction of A at a and B at b is the average of the difference of differences
  (rate(a, b) - rate(a, 0)) - (rate(0, b) - rate(0, 0)): how much A's effect changes when B is
  switched on; higher orders alternate signs the same way (inclusion-exclusion).

For two-level factors these are the usual 2**k effects with the interaction not halved. Cells
are independent, each rate with variance p (1 - p) / n, so SE(effect) = sqrt(sum c**2 p (1 - p)
/ n) over the contrast's coefficients c, with a two-sided z-test of zero and a normal interval.
Effects come ordered by order (main effects first), then factor order, then level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product

from .stats import Counts

# scipy (the `ml` extra) is imported inside the functions that use it: importing this module with
# the experiments' results must not load scipy into every web process.

Cells = Mapping[tuple[int, ...], Counts]


@dataclass(frozen=True, slots=True)
class Effect:
    """One main effect (one factor) or interaction (several), in rate units. `levels` gives
    the compared level of each factor (always 1 for two-level factors)."""

    name: str  # "headline", "headline x button", or "button=2" when a factor has 3+ levels
    factors: tuple[str, ...]
    levels: tuple[int, ...]
    estimate: float
    standard_error: float
    lower: float
    upper: float
    z: float
    p_value: float


def _level_counts(factors: Sequence[str], cells: Cells) -> tuple[int, ...]:
    if not factors or len(set(factors)) != len(factors):
        raise ValueError("need at least one factor, each named once")
    if any(len(key) != len(factors) for key in cells):
        raise ValueError(f"every cell key needs one level per factor ({len(factors)})")
    sizes = tuple(max(key[i] for key in cells) + 1 for i in range(len(factors)))
    expected = set(product(*(range(size) for size in sizes)))
    if set(cells) != expected or any(size < 2 for size in sizes):
        missing = sorted(expected - set(cells))
        raise ValueError(
            f"need the full grid of levels, each factor with 2+ levels; missing {missing}"
        )
    empty = sorted(cell for cell, counts in cells.items() if counts.exposures == 0)
    if empty:
        raise ValueError(f"cells without exposures: {empty}")
    return sizes


def _contrast(members: tuple[int, ...], levels: tuple[int, ...], sizes: tuple[int, ...]):
    """(cell, coefficient) pairs of one effect: inclusion-exclusion over the members, averaged
    over all level combinations of the other factors."""
    others = [i for i in range(len(sizes)) if i not in members]
    share = 1 / math.prod(sizes[i] for i in others)
    for rest in product(*(range(sizes[i]) for i in others)):
        for switched in product((0, 1), repeat=len(members)):
            cell = [0] * len(sizes)
            for i, level in zip(others, rest, strict=True):
                cell[i] = level
            for i, level, on in zip(members, levels, switched, strict=True):
                cell[i] = level if on else 0
            sign = -1 if (len(members) - sum(switched)) % 2 else 1
            yield tuple(cell), sign * share


def _effect(members, levels, factors, sizes, cells: Cells, z_crit: float) -> Effect:
    estimate = variance = 0.0
    for cell, coefficient in _contrast(members, levels, sizes):
        counts = cells[cell]
        rate = counts.rate
        estimate += coefficient * rate
        variance += coefficient**2 * rate * (1 - rate) / counts.exposures
    from scipy import stats as scipy_stats

    se = math.sqrt(variance)
    z = estimate / se if se > 0 else 0.0
    p_value = float(2 * scipy_stats.norm.sf(abs(z))) if se > 0 else 1.0
    names = tuple(factors[i] for i in members)
    label = " x ".join(
        factors[i] if sizes[i] == 2 else f"{factors[i]}={level}"
        for i, level in zip(members, levels, strict=True)
    )
    return Effect(
        label,
        names,
        levels,
        estimate,
        se,
        estimate - z_crit * se,
        estimate + z_crit * se,
        z,
        p_value,
    )


def factorial_effects(
    factors: Sequence[str], cells: Cells, confidence: float = 0.95
) -> tuple[Effect, ...]:
    """Every main effect and interaction of a full factorial experiment (see module doc)."""
    from scipy import stats as scipy_stats

    sizes = _level_counts(factors, cells)
    z_crit = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    return tuple(
        _effect(members, levels, factors, sizes, cells, z_crit)
        for order in range(1, len(factors) + 1)
        for members in combinations(range(len(factors)), order)
        for levels in product(*(range(1, sizes[i]) for i in members))
    )
