"""Thompson sampling allocation for multi-armed experiments (issue 9 item 5).

Public API:

    thompson_weights(arms, floor=0.01, draws=10_000, seed=0) -> tuple[float, ...]
    simulate_regret(rates, policy, visitors_per_round=200, rounds=50, seed=0) -> RegretResult
    equal_split(arms) -> tuple[float, ...]          (the fixed policy to compare against)

Thompson sampling (Thompson 1933; see Chapelle & Li, "An Empirical Evaluation of Thompson
Sampling", NeurIPS 2011, and Russo et al., "A Tutorial on Thompson Sampling", 2018): an arm's
weight is the posterior probability that it is the best, estimated here by `draws` seeded
draws from each arm's Beta(1 + conversions, 1 + non-conversions) posterior. The weights feed
the next period's bucketing weights (bucketing.ExperimentSpec), so allocation stays
deterministic per visitor within a period. Every arm keeps at least `floor` so a slow starter
can still recover and the results stay analysable: w = floor + (1 - k floor) * P(best).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .stats import Counts

# numpy (the `ml` extra) is imported inside the functions that draw samples: the worker imports
# this module with the experiments' counting, and only a Thompson-sampling reallocation needs it.

Policy = Callable[[Sequence[Counts]], Sequence[float]]


def thompson_weights(
    arms: Sequence[Counts], floor: float = 0.01, draws: int = 10_000, seed: int = 0
) -> tuple[float, ...]:
    """Traffic weights proportional to each arm's probability of being best, each >= floor,
    summing to 1. Deterministic for a given seed."""
    k = len(arms)
    if k == 0:
        raise ValueError("need at least one arm")
    if not 0.0 <= floor * k <= 1.0:
        raise ValueError(f"a floor of {floor} for {k} arms leaves nothing to allocate")
    import numpy as np

    rng = np.random.default_rng(seed)
    successes = np.array([arm.conversions for arm in arms], dtype=float)
    failures = np.array([arm.exposures - arm.conversions for arm in arms], dtype=float)
    samples = rng.beta(1.0 + successes, 1.0 + failures, size=(draws, k))
    best = np.bincount(samples.argmax(axis=1), minlength=k) / draws
    weights = floor + (1.0 - k * floor) * best
    return tuple(float(w) for w in weights / weights.sum())


def equal_split(arms: Sequence[Counts]) -> tuple[float, ...]:
    return tuple(1.0 / len(arms) for _ in arms)


@dataclass(frozen=True, slots=True)
class RegretResult:
    """Expected regret: visitors times (best rate - rate of the arm they saw), summed."""

    regret: float
    conversions: int
    visitors: int
    final_weights: tuple[float, ...]


def simulate_regret(
    rates: Sequence[float],
    policy: Policy,
    visitors_per_round: int = 200,
    rounds: int = 50,
    seed: int = 0,
) -> RegretResult:
    """Run `policy` on arms with known conversion `rates`, re-weighting after every round of
    `visitors_per_round` visitors (a batch, as the weights are refreshed periodically)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    true_rates = np.asarray(rates, dtype=float)
    best = true_rates.max()
    counts = [Counts(0, 0) for _ in rates]
    regret, weights = 0.0, tuple(policy(counts))
    for _ in range(rounds):
        shown = rng.multinomial(visitors_per_round, weights)
        converted = rng.binomial(shown, true_rates)
        regret += float(np.dot(shown, best - true_rates))
        counts = [
            Counts(c.conversions + int(x), c.exposures + int(n))
            for c, x, n in zip(counts, converted, shown, strict=True)
        ]
        weights = tuple(policy(counts))
    total = sum(c.conversions for c in counts)
    return RegretResult(regret, total, visitors_per_round * rounds, weights)
