"""Who takes part and which arm they get: the gate, deterministic and sticky assignment, holdout."""

from __future__ import annotations

import time

import pytest

from tailored import conf
from tailored.core.bucketing import assign
from tailored.core.types import EMPTY_PROFILE, Consent, Context, Profile, Visitor
from tailored.experiments.models import HOLDOUT, Experiment
from tailored.experiments.services import arm_for, group_for, takes_part

from .conftest import make_experiment, running, visitor_in

pytestmark = pytest.mark.django_db
GRANTED = Consent(decided=True, analytics=True, personalization=True)
ARMS = [("control", 50, {}), ("b", 50, {})]


def visitor(visitor_id: str | None, consent: Consent = GRANTED, device: str = "desktop", segments=(), profile=None) -> Visitor:
    profile = profile or (Profile(visitor_id=visitor_id) if visitor_id else EMPTY_PROFILE)
    return Visitor(id=visitor_id, consent=consent, context=Context(device=device), profile=profile, segments=frozenset(segments))


@pytest.fixture
def live(memory_store):
    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS)
    return running("cta")


def test_the_arm_is_the_pure_cores_hash_of_seed_and_visitor(live):
    for i in range(40):
        visitor_id = f"{i:032x}"
        assert arm_for(visitor(visitor_id), live) == assign(live.spec, visitor_id).arm
    assert live.spec.seed == "cta"  # the seed defaults to the key


def test_non_consenting_bots_anonymous_and_out_of_audience_see_control_and_are_not_counted(live):
    b_visitor = visitor_in(live, "b")
    declined = Consent(decided=True, analytics=False, personalization=False)
    gpc = Consent(decided=True, analytics=True, personalization=True, opted_out_by_browser=True)
    for someone in (visitor(None), visitor(b_visitor, declined), visitor(b_visitor, gpc), visitor(b_visitor, device="bot")):
        assert arm_for(someone, live) == "control"
    assert not conf.get_profile_store().get(b_visitor, time.time()).assignments
    from tailored.experiments.counting import counters

    assert counters().exposed_arm("cta", b_visitor) is None


def test_the_audience_segment_filters(memory_store):
    from tailored.models import Segment

    segment = Segment.objects.first()
    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS, audience=segment)
    live = running("cta")
    b_visitor = visitor_in(live, "b")
    assert not takes_part(visitor(b_visitor), live, time.time())
    assert arm_for(visitor(b_visitor), live) == "control"
    assert arm_for(visitor(b_visitor, segments=[segment.slug]), live) == "b"


def test_outside_the_dates_everyone_sees_control(memory_store):
    from django.utils import timezone

    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS, starts_at=timezone.now() + timezone.timedelta(hours=1))
    live = running("cta")
    assert arm_for(visitor(visitor_in(live, "b")), live) == "control"


def test_assignment_is_sticky_when_weights_change(memory_store):
    experiment = make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS)
    live = running("cta")
    b_visitor = visitor_in(live, "b")
    assert arm_for(visitor(b_visitor), live) == "b"
    experiment.arms.filter(key="b").update(weight=0)  # b gets no new visitors
    live = running("cta")
    assert assign(live.spec, b_visitor).arm == "control"
    stored = conf.get_profile_store().get(b_visitor, time.time())
    assert stored.assignments == {"cta": "b"}
    assert arm_for(visitor(b_visitor, profile=stored), live) == "b"  # read with the profile: no new draw
    assert arm_for(visitor(b_visitor), live) == "b"  # even without it: HSETNX keeps the first arm


def test_traffic_leaves_some_visitors_out_uncounted(memory_store):
    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS, traffic_percent=10)
    live = running("cta")
    out = next(f"{i:032x}" for i in range(100) if assign(live.spec, f"{i:032x}") is None)
    assert group_for(visitor(out), live) is None
    assert arm_for(visitor(out), live) == "control"
    assert not conf.get_profile_store().get(out, time.time()).assignments


def test_the_holdout_sees_control_but_is_counted_as_its_own_group(memory_store):
    from tailored.experiments.counting import counters

    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS, holdout_percent=30)
    live = running("cta")
    held = visitor_in(live, "control", holdout=True)
    assert arm_for(visitor(held), live) == "control"
    assert conf.get_profile_store().get(held, time.time()).assignments == {"cta": HOLDOUT}
    assert counters().exposed_arm("cta", held) == HOLDOUT


def test_a_removed_arm_sends_its_visitors_to_control_uncounted(memory_store):
    experiment = make_experiment(key="cta", target=Experiment.Target.PAGE, arms=[*ARMS, ("c", 50, {})])
    live = running("cta")
    c_visitor = visitor_in(live, "c")
    assert arm_for(visitor(c_visitor), live) == "c"
    experiment.arms.filter(key="c").delete()
    live = running("cta")
    assert arm_for(visitor(c_visitor), live) == "control"


def test_only_running_experiments_are_live(memory_store):
    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS, status=Experiment.Status.PAUSED)
    from tailored.experiments.services import experiment_cache

    experiment_cache.invalidate()
    assert "cta" not in experiment_cache.refresh().by_key


def test_a_store_failure_shows_control(settings):
    # A Redis that is not there: the page still renders, with the control.
    settings.PERSONALIZATION = {
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS)
    live = running("cta")
    assert arm_for(visitor(visitor_in(live, "b")), live) == "control"


def test_a_failed_load_is_retried_by_the_next_refresh(memory_store, django_db_blocker):
    from tailored.experiments.services import experiment_cache

    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS)
    experiment_cache.invalidate()
    with django_db_blocker.block(), pytest.raises(RuntimeError):  # the database is out of reach
        experiment_cache.refresh()
    assert "cta" in experiment_cache.refresh().by_key


def test_an_unreachable_redis_does_not_recompile_the_experiments(settings, use_redis_store, redis_client, django_assert_num_queries):
    # Redis not answering says nothing about edits: each process keeps what it compiled instead of
    # recompiling on every refresh while Redis is away (issue 14: a hung Redis must cost nothing).
    from tailored.experiments.services import VERSION_KEY, experiment_cache

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SEGMENT_REFRESH_SECONDS": 0}
    make_experiment(key="cta", target=Experiment.Target.PAGE, arms=ARMS)
    redis_client.set(VERSION_KEY, "7")  # another process's edit, as it bumps the version
    experiment_cache.invalidate()
    experiment_cache.refresh()  # compiles
    assert "cta" in experiment_cache.refresh().by_key  # reads version 7 (and compiles again)
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "SEGMENT_REFRESH_SECONDS": 0,
    }
    with django_assert_num_queries(0):
        assert "cta" in experiment_cache.refresh().by_key
