"""CUPED: variance reduction with a pre-experiment covariate (issue 9 item 2).

Public API:

    MomentSums(n, sum_y, sum_x, sum_y2, sum_x2, sum_xy)     per arm; `+` merges two
    MomentSums.from_arrays(y, x)
    cuped(control, treatment, confidence=0.95) -> CupedResult

Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled Experiments by
Utilizing Pre-Experiment Data" (WSDM 2013): with Y the metric during the experiment and X the
same visitor's metric before it (unaffected by the arm), Y_cv = Y - theta (X - E X) has the same
expected difference between arms and variance Var(Y) (1 - rho**2) when theta = Cov(Y, X) / Var(X).

Everything is computed from sufficient statistics, which the database can keep as running sums
per arm. theta is estimated once from both arms (within-arm covariances pooled, so a treatment
effect on Y cannot leak into it) and applied to both, as Deng et al. recommend. Sums of squares
lose precision for huge, far-from-zero values; metrics here are counts and amounts per visitor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# scipy (the `ml` extra) is imported in `cuped()`, the one function that needs it, so that the
# experiments' results module can be imported by a web process without loading scipy.

@dataclass(frozen=True, slots=True)
class MomentSums:
    """Sufficient statistics of (y, x) pairs for one arm."""

    n: int
    sum_y: float
    sum_x: float
    sum_y2: float
    sum_x2: float
    sum_xy: float

    @classmethod
    def from_arrays(cls, y: Sequence[float], x: Sequence[float]) -> MomentSums:
        if len(y) != len(x):
            raise ValueError("y and x need one value per visitor each")
        # fsum: exact-as-possible sums, so the centred moments lose less to cancellation.
        return cls(
            len(y),
            math.fsum(y),
            math.fsum(x),
            math.fsum(v * v for v in y),
            math.fsum(v * v for v in x),
            math.fsum(a * b for a, b in zip(y, x, strict=True)),
        )

    def __add__(self, other: MomentSums) -> MomentSums:
        """Both groups' sums together (e.g. daily rows summed into a total)."""
        return MomentSums(
            self.n + other.n,
            self.sum_y + other.sum_y,
            self.sum_x + other.sum_x,
            self.sum_y2 + other.sum_y2,
            self.sum_x2 + other.sum_x2,
            self.sum_xy + other.sum_xy,
        )

    @property
    def mean_y(self) -> float:
        return self.sum_y / self.n

    @property
    def mean_x(self) -> float:
        return self.sum_x / self.n

    def centred(self) -> tuple[float, float, float]:
        """(Syy, Sxx, Sxy): sums of squares and cross-products about the arm's own means."""
        return (
            self.sum_y2 - self.sum_y**2 / self.n,
            self.sum_x2 - self.sum_x**2 / self.n,
            self.sum_xy - self.sum_x * self.sum_y / self.n,
        )


@dataclass(frozen=True, slots=True)
class CupedResult:
    """Adjusted means and difference (treatment - control) with a normal interval; the
    unadjusted figures alongside so the page can show what CUPED bought."""

    theta: float
    control_mean: float
    treatment_mean: float
    difference: float
    standard_error: float
    lower: float
    upper: float
    p_value: float
    unadjusted_difference: float
    unadjusted_standard_error: float
    variance_reduction: float  # 1 - adjusted / unadjusted variance of the difference ≈ rho**2


def _adjusted_variance(sums: MomentSums, theta: float) -> float:
    """Sample variance of Y - theta X within one arm."""
    syy, sxx, sxy = sums.centred()
    return max(syy - 2 * theta * sxy + theta * theta * sxx, 0.0) / (sums.n - 1)


def cuped(control: MomentSums, treatment: MomentSums, confidence: float = 0.95) -> CupedResult:
    """CUPED-adjusted comparison of two arms from their sufficient statistics."""
    if control.n < 2 or treatment.n < 2:
        raise ValueError("CUPED needs at least two visitors in each arm")
    # 1. theta from within-arm covariances pooled over both arms.
    _, sxx_c, sxy_c = control.centred()
    _, sxx_t, sxy_t = treatment.centred()
    theta = (sxy_c + sxy_t) / (sxx_c + sxx_t) if sxx_c + sxx_t > 0 else 0.0
    # 2. Shift each arm's mean by theta times its covariate's distance from the overall mean.
    overall_x = (control.sum_x + treatment.sum_x) / (control.n + treatment.n)
    control_mean = control.mean_y - theta * (control.mean_x - overall_x)
    treatment_mean = treatment.mean_y - theta * (treatment.mean_x - overall_x)
    # 3. Variances of the difference, adjusted and not.
    variance = (
        _adjusted_variance(control, theta) / control.n
        + _adjusted_variance(treatment, theta) / treatment.n
    )
    raw_variance = (
        _adjusted_variance(control, 0.0) / control.n
        + _adjusted_variance(treatment, 0.0) / treatment.n
    )
    difference = treatment_mean - control_mean
    se = math.sqrt(variance)
    from scipy import stats as scipy_stats

    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2))
    p_value = float(2 * scipy_stats.norm.sf(abs(difference) / se)) if se > 0 else 1.0
    return CupedResult(
        theta=theta,
        control_mean=control_mean,
        treatment_mean=treatment_mean,
        difference=difference,
        standard_error=se,
        lower=difference - z * se,
        upper=difference + z * se,
        p_value=p_value,
        unadjusted_difference=treatment.mean_y - control.mean_y,
        unadjusted_standard_error=math.sqrt(raw_variance),
        variance_reduction=1 - variance / raw_variance if raw_variance > 0 else 0.0,
    )
