"""Global holdout fixtures: the holdout on at 50% (so ids of both groups are quick to find),
over a fresh memory store or the session's real Redis."""

from __future__ import annotations

import pytest

from tailored import conf
from tailored.core.bucketing import in_global_holdout
from tailored.experiments.counting import counters
from tailored.holdout import HOLDOUT_KEY
from tests.helpers import (  # noqa: F401 (re-exported to the tests)
    ELECTRONICS_HERO,
    ELECTRONICS_VARIANT,
    FALLBACK_HERO,
    HOME_BLOCK,
    experiment_cache_cleared,
)

SHARE = 50


fresh_experiment_cache = pytest.fixture(autouse=True, name="fresh_experiment_cache")(experiment_cache_cleared)


def _with_holdout(settings, percent: int = SHARE):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GLOBAL_HOLDOUT_PERCENT": percent}
    return conf.get_profile_store()


@pytest.fixture
def holdout_on(settings, memory_store):
    """A fresh memory store with half the consenting visitors held out."""
    return _with_holdout(settings)


@pytest.fixture
def redis_holdout_on(settings, use_redis_store):
    return _with_holdout(settings)


def visitor_ids(held: bool, count: int = 1, start: int = 1) -> list[str]:
    """Visitor ids (32 hex digits) the hash puts in (held=True) or out of the holdout."""
    found = []
    for i in range(start, start + 10_000):
        visitor_id = f"{i:032x}"
        if in_global_holdout(visitor_id, SHARE / 100) == held:
            found.append(visitor_id)
            if len(found) == count:
                return found
    raise AssertionError("no such visitor ids")


def pending(stat: str, goal: str = "") -> dict[str, int]:
    """Counted but not flushed: group -> visitors (stat "n") or conversions (stat "c") on `goal`."""
    totals: dict[str, int] = {}
    for (_, group, g, s), value in counters().pending(HOLDOUT_KEY).items():
        if s == stat and g == goal:
            totals[group] = totals.get(group, 0) + value
    return totals
