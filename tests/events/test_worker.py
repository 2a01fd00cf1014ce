"""The stream worker against a real Redis and the test database: every event stored exactly once,
redelivery and poison entries, cart abandonment."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from tailored import worker
from tailored.core.types import Event
from tailored.events.stream import CONSUMER_GROUP, STREAM_KEY, encode_batch
from tailored.models import Event as EventRow
from tailored.models import WebhookDelivery

pytestmark = pytest.mark.django_db

HOOK = {"url": "http://127.0.0.1:9/hooks", "secret": "s3cret", "topics": ["cart_abandoned"]}
NOW = time.time()
DELAY = 60 * 60  # CART_ABANDONMENT_MINUTES = 60


def page_views(visitor: str, count: int, start: int = 0) -> list[Event]:
    return [Event(id=f"{visitor}-{i}", type="page_view", ts=NOW, category="electronics", url="/p") for i in range(start, start + count)]


def add_entries(client, entries: int, per_entry: int) -> int:
    """`entries` stream entries of `per_entry` page views each; returns how many events."""
    for n in range(entries):
        client.xadd(STREAM_KEY, encode_batch(f"visitor{n % 4}", page_views(f"v{n % 4}-b{n}", per_entry)))
    return entries * per_entry


def consumer(name: str = "w1", **options) -> worker.Consumer:
    # block_ms=0: reads never wait, so a test turn returns at once.
    return worker.Consumer(name=name, batch=options.pop("batch", 10), block_ms=0, **options)


def drain(client, who: worker.Consumer, now: float = NOW) -> worker.StepResult:
    total = worker.StepResult()
    while result := worker.process_once(client, who, now=now):
        total += result
    return total


def pending_count(client) -> int:
    return client.xpending(STREAM_KEY, CONSUMER_GROUP)["pending"]


@pytest.fixture
def stream(redis_client):
    worker.ensure_group(redis_client)
    return redis_client


def test_every_event_of_every_entry_is_stored_once(stream):
    events = add_entries(stream, entries=25, per_entry=3)

    total = drain(stream, consumer(batch=10))

    assert (total.entries, total.events, total.poison) == (25, events, 0)
    assert EventRow.objects.count() == events
    assert pending_count(stream) == 0
    row = EventRow.objects.get(visitor_id="visitor1", event_id="v1-b1-0")
    assert (row.type, row.category, row.url, row.item) == ("page_view", "electronics", "/p", "")
    assert abs(row.ts.timestamp() - NOW) < 1e-3


def test_creating_the_group_twice_is_harmless(stream):
    worker.ensure_group(stream)
    assert [g["name"] for g in stream.xinfo_groups(STREAM_KEY)] == [CONSUMER_GROUP]


def test_entries_of_a_worker_that_died_after_committing_are_claimed_and_not_duplicated(stream):
    events = add_entries(stream, entries=6, per_entry=4)
    dead = consumer("dead")
    # The dead worker read its batch and committed the rows, then died before XACK.
    entries = worker.read_new(stream, dead, count=10, block=False)
    worker.persist(worker.decode_entries(entries)[0])
    assert EventRow.objects.count() == events
    assert pending_count(stream) == 6

    # A live worker claims the idle entries (XAUTOCLAIM) and processes them again.
    result = worker.process_once(stream, consumer("live", claim_idle_seconds=0), now=NOW)

    assert result.entries == 6
    assert EventRow.objects.count() == events
    assert EventRow.objects.values("visitor_id", "event_id").distinct().count() == events
    assert pending_count(stream) == 0


def test_entries_are_not_claimed_before_the_idle_time(stream):
    add_entries(stream, entries=3, per_entry=1)
    worker.read_new(stream, consumer("slow"), count=10, block=False)

    result = worker.process_once(stream, consumer("other", claim_idle_seconds=60), now=NOW)

    assert result.entries == 0
    assert pending_count(stream) == 3


def test_a_worker_restarted_under_the_same_name_resumes_its_own_pending_entries(stream):
    events = add_entries(stream, entries=4, per_entry=2)
    worker.read_new(stream, consumer("w1"), count=10, block=False)
    lines: list[str] = []

    total = worker.run(stream, consumer("w1", claim_idle_seconds=60), threading.Event(), lines.append, once=True)

    assert (total.entries, total.events) == (4, events)
    assert EventRow.objects.count() == events
    assert pending_count(stream) == 0
    assert lines and "4 entries, 8 events, 0 poison" in lines[-1]


def test_the_worker_process_takes_what_it_loaded_out_of_the_garbage_collectors_view_after_its_first_stored_turn(
    stream, use_redis_store, personalization,
):
    """Full collections would otherwise walk every loaded object again (settle_heap's docstring)."""
    import gc

    gc.unfreeze()
    try:
        quiet = worker.run(stream, consumer("w1"), threading.Event(), lambda line: None, once=True, settle=True)
        assert not quiet and gc.get_freeze_count() == 0  # nothing stored: nothing loaded for it yet
        add_entries(stream, entries=2, per_entry=1)
        worker.run(stream, consumer("w1"), threading.Event(), lambda line: None, once=True)
        assert gc.get_freeze_count() == 0  # a caller's loop (a test, a thread) keeps its heap as it is
        add_entries(stream, entries=2, per_entry=1)
        worker.run(stream, consumer("w1"), threading.Event(), lambda line: None, once=True, settle=True)
        assert gc.get_freeze_count() > 10_000  # Django, Wagtail and the worker's modules at least
        gc.unfreeze()
        add_entries(stream, entries=2, per_entry=1)
        personalization(REDIS_URL=use_redis_store)
        call_command("tailored_worker", "--once", "--block-ms", "0", stdout=io.StringIO())
        assert gc.get_freeze_count() > 10_000  # the worker process settles its heap
    finally:
        gc.unfreeze()


def test_poison_entries_are_acknowledged_counted_and_skipped(stream):
    good = page_views("good", 2)
    stream.xadd(STREAM_KEY, encode_batch("visitor", good[:1]))
    stream.xadd(STREAM_KEY, {"v": "visitor", "e": "{not json"})
    stream.xadd(STREAM_KEY, {"something": "else"})
    stream.xadd(STREAM_KEY, {"v": "visitor", "e": json.dumps([{"id": "x", "type": "page_view", "ts": 1e20}])})
    stream.xadd(STREAM_KEY, {"v": "visitor", "e": json.dumps([{"id": "y", "type": None, "ts": NOW}])})
    stream.xadd(STREAM_KEY, {"v": "visitor", "e": json.dumps([{"id": "z" * 65, "type": "page_view", "ts": NOW}])})
    stream.xadd(STREAM_KEY, encode_batch("visitor", good[1:]))

    result = drain(stream, consumer())

    assert (result.entries, result.events, result.poison, result.dead_letters) == (7, 2, 2, 5)
    assert set(EventRow.objects.values_list("event_id", flat=True)) == {"good-0", "good-1"}
    assert pending_count(stream) == 0


# -- Cart abandonment -----------------------------------------------------------------------------


def cart_event(kind: str, event_id: str, ts: float, item: str | None = None, **attrs) -> Event:
    return Event(id=event_id, type=kind, ts=ts, item=item, attrs=attrs)


@pytest.fixture
def cart_hooks(settings):
    settings.PERSONALIZATION = {"WEBHOOKS": [HOOK], "CART_ABANDONMENT_MINUTES": 60}


def process(client, visitor: str, *events: Event) -> None:
    """Process one batch as a worker would at the time of its last event (nothing due yet)."""
    client.xadd(STREAM_KEY, encode_batch(visitor, list(events)))
    drain(client, consumer(), now=max(event.ts for event in events))


def abandoned() -> list[dict]:
    return [d.payload for d in WebhookDelivery.objects.filter(topic="cart_abandoned")]


def test_a_cart_left_alone_fires_once_with_the_items_still_in_it(stream, cart_hooks):
    t0 = NOW - 2 * DELAY
    process(
        stream,
        "shopper",
        cart_event("add_to_cart", "a1", t0, "3", quantity=2),
        cart_event("add_to_cart", "a2", t0 + 1, "5"),
        cart_event("remove_from_cart", "r1", t0 + 2, "5"),
        cart_event("add_to_cart", "a3", t0 + 3, "7"),
        cart_event("remove_from_cart", "r2", t0 + 4, "3", quantity=1),
    )
    assert stream.zscore(worker.CART_WATCH_KEY, "shopper") == pytest.approx(t0 + 3 + DELAY)

    assert worker.fire_due_carts(stream, now=t0 + 3 + DELAY - 1) == 0
    # Due by its last add_to_cart, but the cart changed after it (a removal): checked again then.
    assert worker.fire_due_carts(stream, now=t0 + 3 + DELAY) == 0
    assert worker.fire_due_carts(stream, now=t0 + 4 + DELAY) == 1

    [payload] = abandoned()
    assert payload["topic"] == "cart_abandoned"
    assert payload["visitor_id"] == "shopper"
    assert payload["items"] == [3, 7]
    assert payload["cart_updated_at"] == worker._iso(t0 + 4)
    assert payload["detected_at"] == worker._iso(t0 + 4 + DELAY)
    assert WebhookDelivery.objects.get().url == HOOK["url"]
    assert stream.zscore(worker.CART_WATCH_KEY, "shopper") is None
    # Popping again finds nothing.
    assert worker.fire_due_carts(stream, now=NOW + 10 * DELAY) == 0
    assert len(abandoned()) == 1


def test_an_analytics_only_visitors_cart_is_stored_but_never_watched(stream, cart_hooks):
    from tailored.profiles.redis import RedisProfileStore

    t0 = NOW - 2 * DELAY
    store = RedisProfileStore(stream, retention_seconds=90 * 86400)
    store.record("counted", [cart_event("add_to_cart", "a1", t0, "3")], t0, build_profile=False)
    drain(stream, consumer(), now=t0)

    assert EventRow.objects.filter(visitor_id="counted", type="add_to_cart").count() == 1  # for aggregate counts
    assert stream.zscore(worker.CART_WATCH_KEY, "counted") is None
    assert worker.fire_due_carts(stream, now=NOW) == 0 and abandoned() == []


def test_a_purchase_ends_the_watch(stream, cart_hooks):
    t0 = NOW - 2 * DELAY
    process(stream, "buyer", cart_event("add_to_cart", "a1", t0, "3"))
    process(stream, "buyer", cart_event("purchase", "p1", t0 + 60, order_id="o1", value=10.0, items=[3]))

    assert stream.zscore(worker.CART_WATCH_KEY, "buyer") is None
    assert worker.fire_due_carts(stream, now=NOW) == 0
    assert abandoned() == []


def test_an_old_purchase_does_not_end_the_watch_of_a_newer_cart(stream, cart_hooks):
    t0 = NOW - 2 * DELAY
    # The newer add_to_cart is processed first, the older purchase (a redelivery) after it.
    process(stream, "again", cart_event("add_to_cart", "a2", t0 + 100, "9"))
    process(stream, "again", cart_event("purchase", "p1", t0, order_id="o1", value=10.0))

    assert worker.fire_due_carts(stream, now=NOW) == 1
    assert abandoned()[0]["items"] == [9]


def test_items_bought_before_are_not_in_the_abandoned_cart(stream, cart_hooks):
    t0 = NOW - 2 * DELAY
    process(
        stream,
        "returning",
        cart_event("add_to_cart", "a1", t0, "1"),
        cart_event("purchase", "p1", t0 + 1, order_id="o1", value=5.0),
        cart_event("add_to_cart", "a2", t0 + 2, "2"),
    )

    assert worker.fire_due_carts(stream, now=NOW) == 1
    assert abandoned()[0]["items"] == [2]


def test_an_emptied_cart_fires_nothing(stream, cart_hooks):
    t0 = NOW - 2 * DELAY
    process(stream, "undecided", cart_event("add_to_cart", "a1", t0, "1"), cart_event("remove_from_cart", "r1", t0 + 1, "1"))

    assert worker.fire_due_carts(stream, now=NOW) == 0
    assert abandoned() == []
    assert stream.zscore(worker.CART_WATCH_KEY, "undecided") is None


def test_two_workers_popping_the_same_cart_fire_once(stream, cart_hooks):
    t0 = NOW - 2 * DELAY
    process(stream, "shopper", cart_event("add_to_cart", "a1", t0, "4"))

    assert worker.fire_due_carts(stream, now=NOW) + worker.fire_due_carts(stream, now=NOW) == 1
    assert len(abandoned()) == 1


def test_of_many_concurrent_claims_on_a_due_cart_exactly_one_wins(stream, redis_url):
    import redis

    stream.zadd(worker.CART_WATCH_KEY, {"shopper": NOW - 1})
    wins: list[float | None] = []
    start = threading.Barrier(8)

    def claim() -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        start.wait()
        wins.append(worker.claim_due_cart(client, "shopper", NOW))
        client.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len([w for w in wins if w is not None]) == 1


def test_a_cart_that_fires_again_after_a_lost_lease_is_not_sent_twice(stream, cart_hooks):
    t0 = NOW - 2 * DELAY
    process(stream, "shopper", cart_event("add_to_cart", "a1", t0, "4"))
    assert worker.fire_due_carts(stream, now=NOW) == 1
    # As if the worker died before releasing its lease: the same cart comes due again.
    stream.zadd(worker.CART_WATCH_KEY, {"shopper": t0 + DELAY})

    assert worker.fire_due_carts(stream, now=NOW + 1) == 0
    assert len(abandoned()) == 1


def test_a_cart_changed_since_the_watch_was_set_is_checked_later(stream, cart_hooks):
    t0 = NOW - DELAY / 2
    process(stream, "shopper", cart_event("add_to_cart", "a1", t0, "4"))
    # A stale watch (e.g. an older score) comes due although the cart changed half an hour ago.
    stream.zadd(worker.CART_WATCH_KEY, {"shopper": NOW - 1})

    assert worker.fire_due_carts(stream, now=NOW) == 0
    assert stream.zscore(worker.CART_WATCH_KEY, "shopper") == pytest.approx(t0 + DELAY)
    assert worker.fire_due_carts(stream, now=t0 + DELAY) == 1


def test_without_a_subscribed_webhook_a_due_cart_is_dropped_quietly(stream, settings):
    settings.PERSONALIZATION = {"WEBHOOKS": []}
    process(stream, "shopper", cart_event("add_to_cart", "a1", NOW - 2 * DELAY, "4"))

    assert worker.fire_due_carts(stream, now=NOW) == 0
    assert stream.zcard(worker.CART_WATCH_KEY) == 0
    assert WebhookDelivery.objects.count() == 0


# -- The real command, as processes --------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@pytest.fixture(scope="module")
def worker_db(tmp_path_factory) -> Path:
    """A SQLite file with the personalization tables, shared by the worker processes and the test
    (the pytest database lives in this process only)."""
    path = tmp_path_factory.mktemp("worker") / "db.sqlite3"
    # Only this app's migrations: the worker touches nothing else, and all of Wagtail's take 10 s.
    subprocess.run([PYTHON, "manage.py", "migrate", "tailored", "-v0"], cwd=ROOT, env=worker_env(path, ""), check=True)
    return path


@pytest.fixture
def worker_db_rows(worker_db):
    with sqlite3.connect(worker_db) as db:
        db.execute("DELETE FROM tailored_event")
    return worker_db


def worker_env(db: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="cms.settings.test",
        SQLITE_PATH=str(db),
        REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
    )
    return env


def start_worker(db: Path, redis_url: str, log: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "manage.py", "tailored_worker", "--block-ms", "200", *options],
        cwd=ROOT,
        env=worker_env(db, redis_url),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def workers():
    """Starts worker processes for one test and reaps every one afterwards, whatever happened: an
    orphaned worker would consume later tests' stream entries (issue 14 item 12)."""
    started: list[subprocess.Popen] = []

    def start(*args, **kwargs) -> subprocess.Popen:
        process = start_worker(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def stored(db: Path) -> tuple[int, int]:
    """Rows in the worker's database, and distinct (visitor, event id) pairs among them."""
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT visitor_id || '/' || event_id) FROM tailored_event"
        ).fetchone()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_worker_killed_mid_stream_loses_and_duplicates_nothing(redis_client, redis_url, worker_db_rows, tmp_path, workers):
    db = worker_db_rows
    worker.ensure_group(redis_client)
    events = add_entries(redis_client, entries=400, per_entry=5)

    first = workers(db, redis_url, tmp_path / "first.log", "--name", "first", "--batch", "2")

    def first_holds_a_batch() -> bool:
        # Killed while it holds a batch it read and has not acknowledged (as far as polling can tell).
        held = redis_client.xpending_range(STREAM_KEY, CONSUMER_GROUP, "-", "+", 1, consumername="first")
        return stored(db)[0] >= 300 and bool(held)

    wait_for(first_holds_a_batch, 60, "the first worker to store some events")
    first.kill()  # SIGKILL: no chance to finish the batch or acknowledge it
    first.wait()
    at_kill = stored(db)[0]
    assert at_kill < events, "the first worker finished before it was killed; the test proves nothing"

    second = workers(db, redis_url, tmp_path / "second.log", "--name", "second", "--claim-idle-seconds", "0.5")
    try:
        wait_for(lambda: stored(db)[0] == events and pending_count(redis_client) == 0, 60, "the second worker to finish")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0, (tmp_path / "second.log").read_text()

    assert stored(db) == (events, events)
    assert pending_count(redis_client) == 0
    assert "stopped after" in (tmp_path / "second.log").read_text()


def test_sigterm_finishes_and_acknowledges_the_batch_in_hand(redis_client, redis_url, worker_db_rows, tmp_path, workers):
    db = worker_db_rows
    worker.ensure_group(redis_client)
    add_entries(redis_client, entries=300, per_entry=5)

    process = workers(db, redis_url, tmp_path / "worker.log", "--name", "graceful", "--batch", "20")
    wait_for(lambda: stored(db)[0] > 0, 60, "the worker to store some events")
    process.send_signal(signal.SIGTERM)

    assert process.wait(10) == 0, (tmp_path / "worker.log").read_text()
    assert pending_count(redis_client) == 0
    # Everything the group handed out was stored and deleted from the stream (workers XDEL what
    # they acknowledged), and nothing else: what remains is exactly what was never read.
    last_read = redis_client.xinfo_groups(STREAM_KEY)[0]["last-delivered-id"]
    assert redis_client.xrange(STREAM_KEY, "-", last_read) == []
    handed_out = 300 - redis_client.xlen(STREAM_KEY)
    assert 0 < handed_out <= 300
    assert stored(db) == (handed_out * 5, handed_out * 5)
    # A stopped worker with nothing pending leaves the group.
    assert "graceful" not in [c["name"] for c in redis_client.xinfo_consumers(STREAM_KEY, CONSUMER_GROUP)]


def test_an_idle_worker_stops_promptly_on_sigterm(redis_client, redis_url, worker_db_rows, tmp_path, workers):
    log = tmp_path / "worker.log"
    process = workers(worker_db_rows, redis_url, log, "--name", "idle")
    wait_for(lambda: "consuming" in log.read_text(), 60, "the worker to start")
    time.sleep(0.3)  # inside a blocking read

    process.send_signal(signal.SIGTERM)

    assert process.wait(5) == 0, log.read_text()
    assert "stopped after 0 entries" in log.read_text()
