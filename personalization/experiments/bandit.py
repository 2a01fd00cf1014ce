"""Thompson-sampling reallocation (issue 9 item 5): for each running "thompson" experiment that is
due, new weights from the flushed primary-goal counts, kept as an `AllocationChange` row.

The weights are the core's `bandits.thompson_weights` (each arm's posterior probability of
being best, at least BANDIT_FLOOR each). The latest row is what the cache compiles into the
arms' bucketing weights; visitors keep the arm they were first given (sticky assignment), so
only new visitors follow new weights. Run from the worker's periodic flush (`counting.flush_due`)
and by `manage.py tailored_reallocate`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from tailored import ml
from tailored.core.bandits import thompson_weights
from tailored.core.stats import Counts

from .models import AllocationChange, Experiment
from .targets import BANDIT_FLOOR

logger = logging.getLogger(__name__)
_said_ml_missing = False  # the worker asks every turn: say it once per process


@dataclass(frozen=True, slots=True)
class Reallocation:
    experiment: str
    weights: dict[str, float]
    counts: dict[str, tuple[int, int]]  # arm -> (conversions, exposures)
    reason: str = ""


def due(now: datetime | None = None) -> list[Experiment]:
    """Running Thompson-sampling experiments whose last reallocation is at least their cadence old."""
    now = now or timezone.now()
    candidates = (
        Experiment.objects.filter(status=Experiment.Status.RUNNING, allocation=Experiment.Allocation.THOMPSON)
        .annotate(last_change=Max("allocation_changes__at"))
        .select_related("page")
        .prefetch_related("arms")
    )
    return [
        experiment for experiment in candidates
        if experiment.is_live(now)
        and (experiment.last_change is None
             or now - experiment.last_change >= timedelta(minutes=experiment.reallocate_every_minutes))
    ]


def reallocate(experiment: Experiment, now: datetime | None = None) -> Reallocation:
    """Record new weights from the experiment's flushed primary-goal counts. The first row of a
    bandit is the editor's weights (with the floor), so the history starts when it starts and
    Thompson sampling first moves traffic one cadence later, with data behind it. Deterministic:
    the posterior draws are seeded with the number of earlier reallocations."""
    from .results import arm_definitions, totals  # results imports counting, which calls us

    now = now or timezone.now()
    per_arm, _ = totals(experiment, experiment.primary_goal)
    definitions = arm_definitions(experiment)
    keys = [arm.key for arm in definitions]
    counts = [Counts(min(per_arm[key].conversions, per_arm[key].exposures), per_arm[key].exposures) for key in keys]
    earlier = experiment.allocation_changes.count()
    if earlier:
        shares, reason = thompson_weights(counts, floor=BANDIT_FLOOR, seed=earlier), f"Thompson sampling on {experiment.primary_goal}"
    else:
        shares, reason = _floored([arm.weight for arm in definitions]), "the editor's weights (start)"
    weights = dict(zip(keys, shares, strict=True))
    used = {key: (count.conversions, count.exposures) for key, count in zip(keys, counts, strict=True)}
    AllocationChange.objects.create(
        experiment=experiment, at=now, weights=weights, counts={k: list(v) for k, v in used.items()}, reason=reason
    )
    return Reallocation(experiment.key, weights, used, reason)


def _floored(weights: list[float]) -> tuple[float, ...]:
    """Relative weights as shares summing to 1, each at least BANDIT_FLOOR (as Thompson's are)."""
    total = sum(weights) or 1.0
    k = len(weights)
    return tuple(BANDIT_FLOOR + (1.0 - k * BANDIT_FLOOR) * (w / total if sum(weights) else 1.0 / k) for w in weights)


def reallocate_due(now: datetime | None = None) -> list[Reallocation]:
    """Reallocate every due experiment (flush first so the counts are current), then tell every
    process to recompile. One experiment failing (a broken target) never stops the others."""
    from . import counting
    from .services import experiment_cache

    experiments = due(now)
    if not experiments:
        return []
    if not ml.available():
        _say_ml_missing(len(experiments))
        return []
    counting.flush([experiment.key for experiment in experiments])
    done = []
    for experiment in experiments:
        try:
            with transaction.atomic():
                if _still_due(experiment, now):
                    done.append(reallocate(experiment, now))
        except (ValueError, LookupError) as error:
            logger.warning("experiment %s not reallocated: %s", experiment.key, error)
    if done:
        experiment_cache.changed()
    return done


def _say_ml_missing(count: int) -> None:
    # Thompson sampling draws with numpy. Without it the experiments keep the weights they have
    # (the editor's, or the last reallocation's): still a fair, sticky split, never an error.
    global _said_ml_missing
    if not _said_ml_missing:
        _said_ml_missing = True
        logger.warning("%d Thompson-sampling experiment(s) keep their weights: %s", count, ml.requirement_message("Reallocating"))


def _still_due(experiment: Experiment, now: datetime | None) -> bool:
    """Lock the experiment's row and check again, so two workers on the same turn record one
    reallocation, not two (the lock is a no-op on SQLite, where one process writes at a time)."""
    Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
    last = experiment.allocation_changes.aggregate(last=Max("at"))["last"]
    now = now or timezone.now()
    return last is None or now - last >= timedelta(minutes=experiment.reallocate_every_minutes)
