"""Always-valid results for the difference of two conversion rates (issue 9 item 1), so editors
may look at an experiment every day and stop the moment it is conclusive without inflating the
false-positive rate.

Public API:

    always_valid(control, treatment, alpha=0.05, tuning_n=5000) -> SequentialResult
    always_valid_series(series, alpha=0.05, tuning_n=5000) -> tuple[SequentialResult, ...]
    first_conclusive_look(series, alpha=0.05, tuning_n=5000) -> int | None
    mixture_log_likelihood_ratio(difference, variance, tau2)     (float or numpy arrays)
    mixture_half_width(variance, tau2, alpha)                     (float or numpy arrays)
    mixture_tau2(variance, total, alpha, tuning_n)                (float or numpy arrays)

Method: the mixture sequential probability ratio test (mSPRT) with a normal mixture over the
true difference, as in Johari, Koomen, Pekelis & Walsh, "Peeking at A/B Tests" (KDD 2017),
applied to the difference of rates with its plug-in variance V = p_c q_c / n_c + p_t q_t / n_t:

    Lambda = sqrt(V / (V + tau2)) * exp(tau2 * d**2 / (2 V (V + tau2)))

The always-valid p-value at a look is min over looks so far of 1 / Lambda; the always-valid
interval is d +- sqrt(V (V + tau2) / tau2 * (2 log(1/alpha) + log((V + tau2) / V))).

With tau2 = s2 * rho**2, where s2 = V * N is the per-visitor variance (N visitors in both arms)
and rho**2 = (2 log(1/alpha) + log(2 log(1/alpha) + 1)) / tuning_n, this is exactly the
asymptotic normal-mixture confidence sequence of Howard, Ramdas, McAuliffe & Sekhon, "Time-
uniform, nonparametric, nonasymptotic confidence sequences" (Ann. Statist. 2021), with the
tuning that GrowthBook documents: the boundary is tightest near `tuning_n` total visitors.
The guarantee is asymptotic (normal approximation, plug-in variance), as in both sources.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .stats import Counts

# numpy (the `ml` extra) is imported inside the two functions that use it, so importing this
# module (the admin's report views do at URL loading) costs nothing until a report is computed.


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """One look. `p_value` is always valid at this look (the running minimum over the looks
    given); `lower`/`upper` bound the difference (treatment - control) at this look."""

    difference: float
    lower: float
    upper: float
    p_value: float
    conclusive: bool


def mixture_tau2(variance, total, alpha: float, tuning_n: float):
    """Mixture variance tau2 = (V * N) * rho**2 with rho tuned for `tuning_n` visitors."""
    log_inverse = -2 * math.log(alpha)
    rho2 = (log_inverse + math.log(log_inverse + 1)) / tuning_n
    return variance * total * rho2


def mixture_log_likelihood_ratio(difference, variance, tau2):
    """log Lambda of the normal-mixture SPRT against "no difference" (arrays welcome)."""
    import numpy as np

    return 0.5 * np.log(variance / (variance + tau2)) + tau2 * difference**2 / (
        2 * variance * (variance + tau2)
    )


def mixture_half_width(variance, tau2, alpha: float):
    """Half-width of the always-valid interval: the differences the mSPRT cannot reject."""
    import numpy as np

    return np.sqrt(
        variance * (variance + tau2) / tau2 * (-2 * math.log(alpha) + np.log1p(tau2 / variance))
    )


def _look(control: Counts, treatment: Counts, alpha: float, tuning_n: float) -> tuple:
    """(difference, half-width, p at this look alone) for one look."""
    p_c, p_t = control.rate, treatment.rate
    difference = p_t - p_c
    if control.exposures == 0 or treatment.exposures == 0:
        return difference, math.inf, 1.0
    variance = p_c * (1 - p_c) / control.exposures + p_t * (1 - p_t) / treatment.exposures
    if variance == 0.0:  # all or none converted in both arms: nothing to go on yet
        return difference, math.inf, 1.0
    tau2 = mixture_tau2(variance, control.exposures + treatment.exposures, alpha, tuning_n)
    log_lr = float(mixture_log_likelihood_ratio(difference, variance, tau2))
    half = float(mixture_half_width(variance, tau2, alpha))
    return difference, half, min(1.0, math.exp(-log_lr))


def always_valid(
    control: Counts, treatment: Counts, alpha: float = 0.05, tuning_n: float = 5000
) -> SequentialResult:
    """The always-valid result at a single look (no earlier looks known)."""
    difference, half, p_value = _look(control, treatment, alpha, tuning_n)
    return SequentialResult(
        difference, difference - half, difference + half, p_value, p_value <= alpha
    )


def always_valid_series(
    series: Sequence[tuple[Counts, Counts]], alpha: float = 0.05, tuning_n: float = 5000
) -> tuple[SequentialResult, ...]:
    """Results at every look of cumulative (control, treatment) counts, oldest first. The
    p-value is the running minimum and the interval the running intersection, both of which
    the time-uniform guarantee allows; once conclusive, a series stays conclusive."""
    results: list[SequentialResult] = []
    best_p, lower, upper = 1.0, -math.inf, math.inf
    for control, treatment in series:
        difference, half, p_value = _look(control, treatment, alpha, tuning_n)
        best_p = min(best_p, p_value)
        lower, upper = max(lower, difference - half), min(upper, difference + half)
        if lower > upper:  # only when the normal approximation is off: show this look's own
            lower, upper = difference - half, difference + half
        results.append(SequentialResult(difference, lower, upper, best_p, best_p <= alpha))
    return tuple(results)


def first_conclusive_look(
    series: Sequence[tuple[Counts, Counts]], alpha: float = 0.05, tuning_n: float = 5000
) -> int | None:
    """Index of the first look at which the result became conclusive, or None."""
    for index, result in enumerate(always_valid_series(series, alpha, tuning_n)):
        if result.conclusive:
            return index
    return None
