"""CUPED's pre-period is a setting: PERSONALIZATION["EXPERIMENT_CUPED_DAYS"] (14 by default)."""

from __future__ import annotations

import time

import pytest

from tailored import conf
from tailored.core.types import Consent, Context, Event, Profile, Visitor
from tailored.experiments.services import covariate, covariate_hours

from .conftest import make_experiment, running

pytestmark = pytest.mark.django_db
GRANTED = Consent(decided=True, analytics=True, personalization=True)


@pytest.mark.parametrize(("days", "expected"), [(14, 2), (3, 1)])
def test_the_cuped_covariate_counts_the_configured_pre_period(settings, memory_store, days, expected):
    """x = the primary goal's count over EXPERIMENT_CUPED_DAYS before exposure (here: clicks 2
    and 5 days ago, so 2 with the default 14 days and 1 with 3)."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "EXPERIMENT_CUPED_DAYS": days}
    store = conf.get_profile_store()
    now = time.time()
    store.record("v1", [Event(f"e{d}", "click", now - d * 86400, attrs={"target": "x"}) for d in (2, 5)], now)
    make_experiment(key="cuped", target="page", arms=[("control", 1, {}), ("b", 1, {})])
    visitor = Visitor(id="v1", consent=GRANTED, context=Context(device="desktop"), profile=Profile(visitor_id="v1"),
                      segments=frozenset())
    assert covariate_hours() == days * 24
    assert covariate(visitor, running("cuped"), now) == expected
