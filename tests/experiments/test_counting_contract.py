"""The counters' contract, run against both backends (Redis and in-process), and the flush:
exactly once into the rows, also when a flush dies half-way."""

from __future__ import annotations

import pytest

from tailored.experiments import counting
from tailored.experiments.counting import MemoryCounters, RedisCounters
from tailored.experiments.models import ExperimentCount, FlushBatch

from .conftest import make_experiment

NOW = 1_790_000_000.0  # a fixed hour: 497222
HOUR = int(NOW // 3600)


@pytest.fixture(params=["memory", "redis"])
def backend(request):
    if request.param == "memory":
        return MemoryCounters()
    return RedisCounters(request.getfixturevalue("redis_client"))


def test_an_exposure_counts_once_per_visitor(backend):
    assert backend.expose("t", "b", "v1", NOW, x=3)
    assert not backend.expose("t", "b", "v1", NOW + 60, x=3)
    assert not backend.expose("t", "control", "v1", NOW + 60)  # the first arm seen is kept
    assert backend.expose("t", "control", "v2", NOW)
    assert backend.exposed_arm("t", "v1") == "b"
    assert backend.exposed_arm("t", "v3") is None
    pending = backend.pending("t")
    assert pending[(HOUR, "b", "", "n")] == 1
    assert pending[(HOUR, "b", "", "sx")] == 3
    assert pending[(HOUR, "b", "", "sx2")] == 9
    assert pending[(HOUR, "control", "", "n")] == 1


def test_a_conversion_counts_once_per_goal_only_after_exposure(backend):
    assert not backend.convert("t", "click", "v1", NOW, NOW)  # never exposed
    backend.expose("t", "b", "v1", NOW, x=2)
    assert not backend.convert("t", "click", "v1", NOW - 3600, NOW)  # an event from before the exposure
    assert backend.convert("t", "click", "v1", NOW + 5, NOW + 5)
    assert not backend.convert("t", "click", "v1", NOW + 9, NOW + 9)
    assert backend.convert("t", "purchase", "v1", NOW + 9, NOW + 3600)  # another goal, the next hour
    pending = backend.pending("t")
    assert pending[(HOUR, "b", "click", "c")] == 1
    assert pending[(HOUR, "b", "click", "sxy")] == 2
    assert pending[(HOUR + 1, "b", "purchase", "c")] == 1


def test_experiments_are_counted_apart(backend):
    backend.expose("t", "b", "v1", NOW)
    assert backend.expose("other", "b", "v1", NOW)
    assert backend.convert("other", "click", "v1", NOW, NOW)
    assert (HOUR, "b", "click", "c") not in backend.pending("t")


def test_take_returns_the_unfinished_batch_first(backend):
    backend.expose("t", "b", "v1", NOW)
    first = backend.take("t")
    backend.expose("t", "b", "v2", NOW)  # counted while the first batch is being flushed
    again = backend.take("t")
    assert again.batch_id == first.batch_id and again.values == first.values
    assert backend.pending("t")[(HOUR, "b", "", "n")] == 2  # flushing and new, both visible
    backend.done("t", first.batch_id)
    second = backend.take("t")
    assert second.batch_id != first.batch_id
    assert second.values[(HOUR, "b", "", "n")] == 1
    backend.done("t", "not-this-batch")  # a stale done never drops a newer batch
    assert backend.take("t").batch_id == second.batch_id
    backend.done("t", second.batch_id)
    assert backend.take("t") is None


def test_forget_and_reset(backend):
    backend.expose("t", "b", "v1", NOW)
    backend.expose("t", "b", "v2", NOW)
    assert sorted(backend.exposed_visitors("t")) == ["v1", "v2"]
    backend.convert("t", "click", "v1", NOW, NOW)
    backend.forget("v1", [("t", ["click"])])
    assert backend.exposed_arm("t", "v1") is None
    assert backend.exposed_visitors("t") == ["v2"]
    assert backend.pending("t")[(HOUR, "b", "", "n")] == 2  # counts are not personal: they stay
    backend.reset("t", ["click"])
    assert not backend.pending("t")
    assert backend.expose("t", "b", "v1", NOW)


@pytest.mark.django_db
def test_flush_writes_rows_and_empties_the_counters(backend):
    experiment = make_experiment(key="t")
    backend.expose("t", "control", "v1", NOW, x=1)
    backend.expose("t", "b", "v2", NOW, x=2)
    backend.convert("t", "click", "v2", NOW, NOW)
    assert counting.flush(["t"], backend=backend) == 3
    rows = {(r.arm, r.goal): r for r in ExperimentCount.objects.filter(experiment=experiment)}
    assert rows[("control", "")].exposures == 1 and rows[("control", "")].sum_x == 1
    assert rows[("b", "")].exposures == 1 and rows[("b", "")].sum_x2 == 4
    assert rows[("b", "click")].conversions == 1 and rows[("b", "click")].sum_xy == 2
    assert rows[("b", "click")].hour.timestamp() == HOUR * 3600
    assert not backend.pending("t")
    # Later counts of the same hour add to the same rows.
    backend.expose("t", "b", "v3", NOW)
    counting.flush(["t"], backend=backend)
    assert ExperimentCount.objects.get(experiment=experiment, arm="b", goal="").exposures == 2


@pytest.mark.django_db
def test_a_flush_that_dies_is_finished_by_the_next_one_without_loss_or_double_counting(backend):
    experiment = make_experiment(key="t")
    backend.expose("t", "b", "v1", NOW)
    # 1. Dies after taking the batch, before the database: the next flush takes the same batch.
    backend.take("t")
    backend.expose("t", "b", "v2", NOW)
    counting.flush(["t"], backend=backend)
    counting.flush(["t"], backend=backend)
    assert ExperimentCount.objects.get(experiment=experiment, arm="b", goal="").exposures == 2
    # 2. Dies after the commit, before the Redis delete: the batch is found applied and dropped.
    backend.expose("t", "b", "v3", NOW)
    batch = backend.take("t")
    assert counting.apply_batch(experiment.pk, batch) == 1
    assert counting.flush(["t"], backend=backend) == 0
    assert backend.take("t") is None
    assert ExperimentCount.objects.get(experiment=experiment, arm="b", goal="").exposures == 3
    assert FlushBatch.objects.filter(batch=batch.batch_id).count() == 1


def test_counters_follow_the_profile_store(memory_store):
    assert isinstance(counting.counters(), MemoryCounters)
    assert counting.counters() is counting.counters()


def test_counters_use_redis_with_the_redis_store(use_redis_store):
    assert isinstance(counting.counters(), RedisCounters)


def test_retention_forgets_visitors_exposed_before_the_cutoff_and_keeps_the_counts(backend):
    backend.expose("t", "b", "old", NOW - 100 * 86400)
    backend.convert("t", "click", "old", NOW - 100 * 86400, NOW - 100 * 86400)
    backend.expose("t", "b", "new", NOW - 10 * 86400)
    backend.convert("t", "click", "new", NOW - 10 * 86400, NOW - 10 * 86400)
    counted = dict(backend.pending("t"))

    assert backend.expire("t", ["click"], before=NOW - 90 * 86400) == 1

    assert backend.exposed_visitors("t") == ["new"]
    assert backend.exposed_arm("t", "old") is None
    assert not backend.convert("t", "click", "old", NOW, NOW)  # no memo left: nothing to count against
    assert not backend.convert("t", "click", "new", NOW, NOW)  # still converted once
    assert dict(backend.pending("t")) == counted  # the aggregate counts hold no id and stay
    assert backend.expire("t", ["click"], before=NOW - 90 * 86400) == 0
    # Its conversion membership went too: seen again, it is a new visitor to the experiment.
    assert backend.expose("t", "b", "old", NOW) and backend.convert("t", "click", "old", NOW, NOW)
