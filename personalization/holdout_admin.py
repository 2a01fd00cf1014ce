"""Reports -> Personalization lift: the global holdout against everyone else, per goal (issue 9 item 7).

Every figure comes from the pure core on the `HoldoutCount` totals: `stats.personalization_lift`
(z-test, Newcombe and log-ratio lift intervals), `stats.wilson_interval` for each rate, and
`sequential.always_valid_series` over one cumulative look per day, so reading the page daily is
safe. The chart is server-rendered SVG (the experiments' `rate_chart`): no JavaScript.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.safestring import SafeString

from tailored import holdout, ml
from tailored.core import sequential, stats
from tailored.experiments import svg

from .models import HoldoutCount
from .report_access import reports_only

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Group:
    """One group's figures on one goal (also what `svg.rate_chart` draws: label, rate, interval)."""

    key: str
    label: str
    counts: stats.Counts
    interval: tuple[float, float]

    @property
    def rate(self) -> float:
        return self.counts.rate


@dataclass(frozen=True, slots=True)
class GoalLift:
    goal: str
    holdout: Group
    personalized: Group
    comparison: stats.Comparison | None  # None until both groups have visitors
    relative_lift: stats.Interval | None  # None while the holdout's rate is 0 (a ratio to nothing)
    always_valid: sequential.SequentialResult | None
    conclusive_on: date | None
    looks: int
    chart: SafeString
    sentence: str


# (day, group, goal) -> (visitors, conversions), from rows
Daily = Mapping[tuple[date, str, str], tuple[int, int]]


def daily_counts() -> dict[tuple[date, str, str], tuple[int, int]]:
    """The hourly rows summed per UTC day, in one query."""
    daily: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for group, goal, hour, visitors, conversions in HoldoutCount.objects.values_list(
        "group", "goal", "hour", "visitors", "conversions"
    ):
        cell = daily[(hour.date(), group, goal)]
        cell[0] += visitors
        cell[1] += conversions
    return {key: (v, c) for key, (v, c) in daily.items()}


def cumulative(daily: Daily, goal: str) -> list[tuple[date, stats.Counts, stats.Counts]]:
    """(day, holdout, personalized) cumulative counts on `goal`, one look per day, oldest first."""
    totals = {holdout.HOLDOUT: [0, 0], holdout.PERSONALIZED: [0, 0]}
    looks = []
    for day in sorted({day for day, _, _ in daily}):
        for group, total in totals.items():
            total[0] += daily.get((day, group, ""), (0, 0))[0]
            total[1] += daily.get((day, group, goal), (0, 0))[1]
        # A conversion needs an exposure first, so conversions <= visitors; min() guards odd clocks.
        held, personalized = (stats.Counts(min(c, v), v) for v, c in totals.values())
        looks.append((day, held, personalized))
    return looks


def goal_lift(goal: str, looks: list[tuple[date, stats.Counts, stats.Counts]]) -> GoalLift:
    """Everything the report shows for one goal, from its daily cumulative looks."""
    held, personalized = (looks[-1][1], looks[-1][2]) if looks else (stats.Counts(0, 0), stats.Counts(0, 0))
    groups = (
        Group(holdout.HOLDOUT, "Holdout", held, stats.wilson_interval(held)),
        Group(holdout.PERSONALIZED, "Personalized", personalized, stats.wilson_interval(personalized)),
    )
    comparison = series = None
    conclusive_on = None
    if held.exposures and personalized.exposures:
        comparison = stats.personalization_lift(personalized, held)
        series = sequential.always_valid_series([(h, p) for _, h, p in looks])
        conclusive_on = next((looks[i][0] for i, look in enumerate(series) if look.conclusive), None)
    always_valid = series[-1] if series else None
    return GoalLift(
        goal, groups[0], groups[1], comparison, _finite(comparison), always_valid, conclusive_on, len(looks),
        # No chart before both groups have visitors: an interval of 0-100% drawn as a bar looks like data.
        svg.rate_chart(groups) if comparison is not None else SafeString(""),
        sentence(goal, comparison, always_valid, conclusive_on),
    )


def _finite(comparison: stats.Comparison | None) -> stats.Interval | None:
    if comparison is None:
        return None
    relative = comparison.relative_lift
    return relative if all(math.isfinite(v) for v in (relative.estimate, relative.lower, relative.upper)) else None


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _pts(value: float) -> str:
    return f"{value * 100:+.2f} points"


def sentence(goal: str, comparison: stats.Comparison | None, always_valid, conclusive_on: date | None) -> str:
    """What the figures mean, in words, for an editor who reads nothing else."""
    if comparison is None:
        return f"No comparison on “{goal}” yet: both groups need visitors first."
    if comparison.control.conversions == comparison.treatment.conversions == 0:
        return f"No “{goal}” conversions counted in either group yet."
    lift = comparison.absolute_lift
    said = (
        f"Personalized visitors reached “{goal}” at {_pct(comparison.treatment.rate)} against "
        f"{_pct(comparison.control.rate)} in the holdout: {_pts(lift.estimate)} "
        f"(95% interval {_pts(lift.lower)} to {_pts(lift.upper)})."
    )
    if lift.lower > 0:
        said += " The whole interval is above zero: personalization raises this goal."
    elif lift.upper < 0:
        said += " The whole interval is below zero: personalization lowers this goal; review the variants."
    else:
        said += " The interval includes zero: the data cannot yet tell whether personalization helps."
    if always_valid is not None and always_valid.conclusive:
        said += f" Read daily, the result is conclusive since {conclusive_on:%d %b %Y}."
    else:
        said += " Read daily (always-valid p-value), it is not conclusive yet."
    return said


def lift_report(goals: Iterable[str] | None = None) -> list[GoalLift]:
    """One `GoalLift` per configured goal, from the rows."""
    daily = daily_counts()
    return [goal_lift(goal, cumulative(daily, goal)) for goal in (holdout.goals() if goals is None else goals)]


@reports_only
def report(request: HttpRequest) -> HttpResponse:
    if not ml.available():
        # Every figure on the page is scipy's: say so on the dashboard rather than fail.
        messages.error(request, ml.requirement_message("The Personalization lift report"))
        return redirect("wagtailadmin_home")
    try:
        holdout.flush()  # the page shows everything counted so far, as the experiments' page does
    except Exception as error:
        logger.warning("holdout counts not flushed before the report: %s", error)
    context = {
        "share_percent": holdout.share() * 100,
        "enabled": holdout.share() > 0,
        "lifts": lift_report(),
        "has_counts": HoldoutCount.objects.exists(),
    }
    return TemplateResponse(request, "personalization/holdout/report.html", context)


urlpatterns = [path("", report, name="report")]
