"""One RETENTION_DAYS everywhere: data aged past it, in Redis and in the database, is gone after
`manage.py tailored_purge`; data inside it stays (issue 15 item 5)."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tailored import conf, holdout
from tailored.core.types import Event, Snapshot
from tailored.events.stream import (
    DEAD_LETTER_KEY,
    ERASED_KEY,
    STREAM_KEY,
    encode_batch,
    erased_digest,
)
from tailored.experiments import counting
from tailored.models import DataRightsAudit
from tailored.models import Event as StoredEvent
from tailored.profiles.redis import RECENT_KEY, segment_key, visitor_keys
from tests.experiments.conftest import make_experiment

pytestmark = pytest.mark.django_db

DAY = 86400
NOW = time.time()
OLD, RECENT = NOW - 100 * DAY, NOW - 10 * DAY  # RETENTION_DAYS is 90


def visit(store, visitor_id: str, at: float) -> None:
    events = [Event(id=f"{visitor_id}-{at}", type="page_view", ts=at, category="books", url="/books/")]
    store.record(visitor_id, events, at, Snapshot(device="desktop", segments=frozenset({"readers"})))


def purge() -> str:
    out = io.StringIO()
    call_command("tailored_purge", stdout=out)
    return out.getvalue()


@pytest.fixture
def aged(use_redis_store, personalization, redis_client):
    """One visitor last seen 100 days ago and one 10 days ago, everywhere their data can be."""
    personalization(RETENTION_DAYS=90, AUDIT_RETENTION_DAYS=365)
    store = conf.get_profile_store()
    visit(store, "old-visitor", OLD)
    visit(store, "new-visitor", RECENT)
    # Entries no worker stored, appended 100 and 10 days ago (an entry id is its append time in ms).
    redis_client.delete(STREAM_KEY)
    for visitor_id, at in (("old-visitor", OLD), ("new-visitor", RECENT)):
        redis_client.xadd(STREAM_KEY, encode_batch(visitor_id, []), id=f"{int(at * 1000)}-0")
    redis_client.xadd(DEAD_LETTER_KEY, {"v": "old-visitor", "reason": "x"}, id=f"{int(OLD * 1000)}-0")
    redis_client.zadd(ERASED_KEY, {erased_digest("gone-long-ago"): OLD, erased_digest("gone-lately"): RECENT})
    redis_client.zadd(RECENT_KEY, {"old-visitor": OLD})
    experiment = make_experiment(key="retention-test", goals="click")
    backend = counting.counters()
    for visitor_id, at in (("old-visitor", OLD), ("new-visitor", RECENT)):
        backend.expose(experiment.key, "control", visitor_id, at)
        backend.convert(experiment.key, "click", visitor_id, at, at)
        backend.expose(holdout.HOLDOUT_KEY, "holdout", visitor_id, at)
    for visitor_id, at in (("old-visitor", OLD), ("new-visitor", RECENT)):
        StoredEvent.objects.create(visitor_id=visitor_id, event_id="e1", type="page_view", ts=timezone.now() - timedelta(seconds=NOW - at))
    for name, days in (("ancient", 400), ("kept", 300)):
        audit = DataRightsAudit.objects.create(action="export", visitor_id=name)
        DataRightsAudit.objects.filter(pk=audit.pk).update(at=timezone.now() - timedelta(days=days))
    return redis_client, experiment


def test_purge_removes_everything_older_than_the_retention_period_and_keeps_the_rest(aged):
    client, experiment = aged
    old_day, new_day = int(OLD // DAY), int(RECENT // DAY)
    assert client.exists(visitor_keys("old-visitor")["seen"], segment_key("readers", old_day))  # expiry alone kept them

    output = purge()

    # Profiles: the old visitor's keys are gone; the other's expire 90 days after their last visit.
    assert not any(client.exists(key) for key in visitor_keys("old-visitor").values())
    seen_ttl = client.ttl(visitor_keys("new-visitor")["seen"])
    assert 0 < seen_ttl <= 80 * DAY + 60
    # Streams, tombstones, the recent set and segment counts.
    assert [fields["v"] for _, fields in client.xrange(STREAM_KEY)] == ["new-visitor"]
    assert client.xlen(DEAD_LETTER_KEY) == 0
    assert client.zrange(ERASED_KEY, 0, -1) == [erased_digest("gone-lately")]
    assert "old-visitor" not in client.zrange(RECENT_KEY, 0, -1)
    assert not client.exists(segment_key("readers", old_day)) and client.exists(segment_key("readers", new_day))
    # Experiment and holdout memberships (the hourly counts stay).
    backend = counting.counters()
    assert backend.exposed_visitors(experiment.key) == ["new-visitor"]
    assert backend.exposed_visitors(holdout.HOLDOUT_KEY) == ["new-visitor"]
    assert not client.sismember(f"tl:v1:xp:{{{experiment.key}}}:conv:click", "old-visitor")
    # Database rows: events by RETENTION_DAYS, audit rows by AUDIT_RETENTION_DAYS.
    assert list(StoredEvent.objects.values_list("visitor_id", flat=True)) == ["new-visitor"]
    assert list(DataRightsAudit.objects.values_list("visitor_id", flat=True)) == ["kept"]
    assert "deleted 1 events older than 90 days" in output
    assert "deleted 1 data-rights audit rows older than 365 days" in output
    assert "profile store: removed 1 profiles older than 90 days" in output
    assert "profile store: removed 2 experiment and holdout memberships older than 90 days" in output


def test_a_second_purge_finds_nothing_left(aged):
    purge()
    output = purge()
    assert "deleted 0 events" in output and "removed 0 profiles" in output and "removed 0 stream entries" in output


def test_with_redis_down_the_database_is_purged_and_the_command_fails(aged, personalization):
    personalization(REDIS_URL="redis://127.0.0.1:9/0", REDIS_SOCKET_TIMEOUT_SECONDS=0.2)
    with pytest.raises(CommandError, match="Redis is unavailable"):
        purge()
    assert list(StoredEvent.objects.values_list("visitor_id", flat=True)) == ["new-visitor"]


def test_the_memory_store_forgets_inactive_profiles_and_old_segment_days(memory_store, personalization):
    personalization(RETENTION_DAYS=90)
    store = conf.get_profile_store()
    visit(store, "old-visitor", OLD)
    visit(store, "new-visitor", RECENT)
    old_day, new_day = int(OLD // DAY), int(RECENT // DAY)

    def readers_on(day: int) -> int:
        return dict(store.segment_sizes("readers", 101, NOW))[day]

    # Held until purged: the old visitor's record and the old day's segment members.
    assert set(store.recent_visitors(0, 10)) == {"old-visitor", "new-visitor"} and readers_on(old_day) == 1

    purge()

    assert store.recent_visitors(0, 10) == ["new-visitor"]
    assert (readers_on(old_day), readers_on(new_day)) == (0, 1)
    assert store.export("new-visitor", NOW)["profile"]["page_views"] == 1


def test_profiles_are_purged_in_chunks_whatever_their_number(use_redis_store, personalization, redis_client):
    personalization(RETENTION_DAYS=90)
    store = conf.get_profile_store()
    pipe = redis_client.pipeline(transaction=False)
    for n in range(1203):  # more than two chunks of 500
        pipe.zadd(visitor_keys(f"v{n:05d}")["seen"], {"first": OLD, "last": OLD if n % 2 else RECENT})
    pipe.execute()

    assert store.purge(NOW)["profiles"] == 601
    assert len(list(redis_client.scan_iter(match="tl:v1:{*}:seen", count=1000))) == 602
