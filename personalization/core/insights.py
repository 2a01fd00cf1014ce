"""Pure statistics of the Insights report and its alerts (issue 17): Wilson intervals, lift, an
exact test of a rate against its seasonal baseline, Benjamini-Hochberg, and the population
stability index. Plain functions of counts; no framework imports (import-linter enforces it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); (0, 0) without trials.
    Unlike the normal interval it stays inside [0, 1] and behaves at 0 and few trials."""
    if trials <= 0:
        return 0.0, 0.0
    successes = min(max(successes, 0), trials)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(successes: int, trials: int) -> float | None:
    """successes / trials, or None without trials (a rate of nothing is not 0 %)."""
    return successes / trials if trials > 0 else None


def lift(value: float | None, baseline: float | None) -> float | None:
    """Relative change over the baseline (0.12 is +12 %); None when either is unknown or the
    baseline is 0 (no finite lift)."""
    if value is None or baseline is None or baseline <= 0:
        return None
    return value / baseline - 1


# -- Binomial tails through the regularized incomplete beta function ------------------------------


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    # Lentz's method (Numerical Recipes 6.4): converges fast for x < (a + 1) / (a + b + 2).
    tiny, qab, qap, qam = 1e-300, a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_continued_fraction(b, a, 1 - x) / b


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), exact (no normal approximation)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    return regularized_beta(n - k, k + 1, 1 - p)


def binomial_two_sided(k: int, n: int, p: float) -> float:
    """Two-sided p-value of k successes in n trials at rate p: twice the smaller tail, at most 1."""
    if n <= 0:
        return 1.0
    lower = binomial_cdf(k, n, p)
    upper = 1 - binomial_cdf(k - 1, n, p)
    return min(1.0, 2 * min(lower, upper))


# -- Anomalies against a seasonal baseline --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CellWindow:
    """One cell's counts in the tested window and in its baseline (the same hours of previous
    weeks): trials (impressions) and successes (clicks or conversions)."""

    key: str
    trials: int
    successes: int
    baseline_trials: int
    baseline_successes: int


@dataclass(frozen=True, slots=True)
class Finding:
    key: str
    observed: float
    baseline: float
    p_value: float
    direction: str  # "drop" or "spike"


def rate_change_p_value(cell: CellWindow) -> float:
    """Whether the window's rate differs from the baseline's: the exact conditional test of two
    Poisson rates. Given the successes of both periods, the window's share is Binomial(total,
    trials / all trials) when nothing changed. It counts the baseline's own noise (4 weeks are
    not the truth) and is conservative for rates well below 1, as CTRs are."""
    total = cell.successes + cell.baseline_successes
    share = cell.trials / (cell.trials + cell.baseline_trials)
    return binomial_two_sided(cell.successes, total, share)


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[int]:
    """Indices of the hypotheses rejected at false discovery rate q (step-up procedure)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff = 0
    for rank, index in enumerate(order, start=1):
        if p_values[index] <= q * rank / m:
            cutoff = rank
    return sorted(order[:cutoff])


def find_anomalies(
    cells: Sequence[CellWindow], q: float, min_trials: int, min_expected: float, min_change: float
) -> list[Finding]:
    """The cells whose rate moved: only cells with enough volume are tested (quiet cells stay
    quiet), Benjamini-Hochberg at q across them, and a change of at least `min_change` (relative)
    so a tiny but significant wobble of a huge cell does not page anyone."""
    tested: list[tuple[CellWindow, float, float]] = []
    for cell in cells:
        if cell.trials < min_trials or cell.baseline_trials <= 0 or cell.baseline_successes <= 0:
            continue
        baseline = cell.baseline_successes / cell.baseline_trials
        if cell.trials * baseline < min_expected:
            continue
        tested.append((cell, baseline, rate_change_p_value(cell)))
    findings = []
    for index in benjamini_hochberg([p for _, _, p in tested], q):
        cell, baseline, p_value = tested[index]
        observed = cell.successes / cell.trials
        if abs(observed / baseline - 1) < min_change:
            continue
        findings.append(Finding(cell.key, observed, baseline, p_value, "drop" if observed < baseline else "spike"))
    return findings


def volume_drop(observed: int, baseline: Sequence[int], threshold: float) -> float | None:
    """Tracking failure: the share of the baseline's mean volume this hour reached, when it fell
    below `threshold` (e.g. 0.5); None otherwise or without a baseline."""
    known = [value for value in baseline if value > 0]
    if not known:
        return None
    share = observed / (sum(known) / len(known))
    return share if share < threshold else None


@dataclass(frozen=True, slots=True)
class VersionCounts:
    """A model version's recommendation lists: impressions and the clicks on them."""

    version: str
    impressions: int
    clicks: int


def two_proportion_drop_p_value(before_successes: int, before_trials: int, after_successes: int, after_trials: int) -> float:
    """One-sided p-value that the second rate is below the first: the pooled two-proportion
    z-test (normal approximation, sound at the volumes the caller requires). 1.0 when either side
    has no trials or both rates are 0 or 1 (nothing can be said)."""
    if before_trials <= 0 or after_trials <= 0:
        return 1.0
    pooled = (before_successes + after_successes) / (before_trials + after_trials)
    variance = pooled * (1 - pooled) * (1 / before_trials + 1 / after_trials)
    if variance <= 0:
        return 1.0
    z = (before_successes / before_trials - after_successes / after_trials) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def model_ctr_drop(
    previous: VersionCounts, current: VersionCounts, alpha: float, min_impressions: int, min_expected: float, min_change: float,
) -> Finding | None:
    """The current model version's CTR significantly below the previous version's, or None.
    Quiet sites stay quiet: both versions need `min_impressions` impressions and the previous
    rate must predict `min_expected` clicks at the current volume; and the drop must be at least
    `min_change` (relative), so a tiny but significant dip of a busy site pages nobody."""
    if min(previous.impressions, current.impressions) < min_impressions or previous.clicks <= 0:
        return None
    baseline, observed = previous.clicks / previous.impressions, current.clicks / current.impressions
    if current.impressions * baseline < min_expected or observed > baseline * (1 - min_change):
        return None
    p_value = two_proportion_drop_p_value(previous.clicks, previous.impressions, current.clicks, current.impressions)
    if p_value >= alpha:
        return None
    return Finding(f"{previous.version}|{current.version}", observed, baseline, p_value, "drop")


def population_stability_index(expected: Sequence[float], actual: Sequence[float], floor: float = 1e-4) -> float:
    """PSI of two binned distributions (counts or shares, same bins): sum (a - e) ln(a / e) over
    the bins' shares, each floored so an empty bin is finite. Under 0.1: stable; 0.1 to 0.25:
    a moderate shift; above 0.25: a major one (the usual reading)."""
    if len(expected) != len(actual):
        raise ValueError("the distributions must have the same bins")
    total_e, total_a = sum(expected), sum(actual)
    if total_e <= 0 or total_a <= 0:
        return 0.0
    psi = 0.0
    for e, a in zip(expected, actual, strict=True):
        share_e, share_a = max(e / total_e, floor), max(a / total_a, floor)
        psi += (share_a - share_e) * math.log(share_a / share_e)
    return psi


def histogram(values: Sequence[float], bins: int = 10) -> list[int]:
    """Counts of scores in [0, 1] per equal-width bin (1.0 in the last)."""
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, max(0, int(value * bins)))] += 1
    return counts


def seasonal_windows(
    counts: Mapping[str, Mapping[int, tuple[int, int]]], end_hour: int, window_hours: int, weeks: int
) -> list[CellWindow]:
    """Each cell's window (the `window_hours` hours before `end_hour`) and its seasonal baseline
    (the same hours 1..`weeks` weeks earlier), from cell -> hour -> (trials, successes)."""
    window = range(end_hour - window_hours, end_hour)
    baseline = [hour - week * 168 for week in range(1, weeks + 1) for hour in window]
    cells = []
    for key, hours in counts.items():
        trials = sum(hours.get(h, (0, 0))[0] for h in window)
        successes = sum(hours.get(h, (0, 0))[1] for h in window)
        base_trials = sum(hours.get(h, (0, 0))[0] for h in baseline)
        base_successes = sum(hours.get(h, (0, 0))[1] for h in baseline)
        cells.append(CellWindow(key, trials, successes, base_trials, base_successes))
    return cells
