"""The holdout's counts in the real Redis: unique exposures, the worker's flush, and exactly
once even when a flush dies between the database commit and the Redis delete."""

from __future__ import annotations

import time

import pytest

from tailored import holdout
from tailored.experiments.counting import counters, hour_of
from tailored.models import HoldoutCount
from tests.helpers import consent_cookies

from .conftest import pending, visitor_ids

pytestmark = pytest.mark.django_db


def test_exposures_are_unique_in_redis_and_the_worker_flushes_them(client, redis_holdout_on, redis_client):
    for visitor_id in [*visitor_ids(held=True, count=2), *visitor_ids(held=False, count=3)]:
        consent_cookies(client, visitor_id)
        client.get("/")
        client.get("/")
    assert pending("n") == {"holdout": 2, "personalized": 3}
    assert redis_client.hlen("tl:v1:xp:{holdout:global}:exposed") == 5
    holdout.flush_clock.reset()
    assert holdout.flush_due() == 2
    assert holdout.flush_due() == 0  # not due again yet
    rows = {r.group: (r.visitors, r.hour.timestamp()) for r in HoldoutCount.objects.all()}
    assert rows == {"holdout": (2, hour_of(time.time()) * 3600), "personalized": (3, hour_of(time.time()) * 3600)}
    assert not redis_client.exists("tl:v1:xp:{holdout:global}:hours", "tl:v1:xp:{holdout:global}:flushing")


def test_a_flush_that_died_after_its_commit_is_not_counted_twice(redis_holdout_on, redis_client):
    backend = counters()
    now = time.time()
    backend.expose(holdout.HOLDOUT_KEY, "holdout", "v1", now)
    batch = backend.take(holdout.HOLDOUT_KEY)
    assert holdout.apply_batch(batch) == 1
    # ...the process dies here: the batch is still in Redis. The next flush takes it again.
    backend.expose(holdout.HOLDOUT_KEY, "personalized", "v2", now)  # counted meanwhile
    assert holdout.flush() == 0  # the unfinished batch: found applied, skipped, dropped
    assert holdout.flush() == 1  # then the new counts
    assert {r.group: r.visitors for r in HoldoutCount.objects.all()} == {"holdout": 1, "personalized": 1}
    assert holdout.flush() == 0
