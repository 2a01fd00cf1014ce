"""Experiments test helpers. The running-experiment cache is process-wide: each test starts and
ends with it empty and due for a reload, so an experiment rolled back with a test never leaks
into the next one (here or in another package)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cms.models import HomePage
from tailored.core.bucketing import assign
from tailored.experiments.models import Experiment, ExperimentArm
from tailored.experiments.services import LiveExperiment, experiment_cache
from tests.helpers import (  # noqa: F401 (re-exported to the tests)
    ELECTRONICS_HERO,
    ELECTRONICS_VARIANT,
    FALLBACK_HERO,
    HOME_BLOCK,
    OUTDOORS_HERO,
    OUTDOORS_VARIANT,
    experiment_cache_cleared,
)

fresh_experiment_cache = pytest.fixture(autouse=True, name="fresh_experiment_cache")(experiment_cache_cleared)


def make_experiment(
    page=None,
    key: str = "hero-test",
    target: str = Experiment.Target.VARIANTS,
    arms: Sequence[tuple[str, int, dict]] = (),
    status: str = Experiment.Status.RUNNING,
    **fields,
) -> Experiment:
    page = page or HomePage.objects.get()
    experiment = Experiment(page=page, name=key.title(), key=key, status=status, target=target, **fields)
    experiment.arms = [ExperimentArm(key=arm, weight=weight, **extra) for arm, weight, extra in arms]
    experiment.save()
    return experiment


def running(key: str) -> LiveExperiment:
    """The compiled experiment, after a reload of the cache."""
    experiment_cache.invalidate()
    return experiment_cache.refresh().by_key[key]


def visitor_in(live: LiveExperiment, arm: str, holdout: bool = False, skip: int = 0) -> str:
    """A visitor id (32 hex digits) the hash puts in `arm` (the `skip`-th such id)."""
    for i in range(1, 5000):
        visitor_id = f"{i:032x}"
        assignment = assign(live.spec, visitor_id)
        if assignment is not None and assignment.arm == arm and assignment.in_holdout == holdout:
            if skip == 0:
                return visitor_id
            skip -= 1
    raise AssertionError(f"no visitor lands in {arm}")
