"""The stream worker: persists the events of `tl:v1:events`, watches carts, sends webhooks.

Run N of them (`manage.py tailored_worker --name worker-1`), each a consumer in the group
`tl-workers`. Each turn of the loop (`process_once`):

1. claims entries that another consumer read but never acknowledged for longer than
   WORKER_CLAIM_IDLE_SECONDS (XAUTOCLAIM): that consumer died mid-batch;
2. reads new entries (XREADGROUP, at most WORKER_BATCH, blocking a little when idle);
3. persists all their events with one bulk insert in one transaction, updates the cart watch, and
   only then acknowledges the entries (XACK). Delivery is at least once; the unique constraint on
   (visitor, event id) makes the rows exactly once;
4. fires `cart_abandoned` for the carts that are due, and sends the webhooks that are due.

With EVENT_STREAM_SHARDS = N > 1 (issue 19) the stream is N shard streams, each with its own
group `tl-workers`: every worker reads every shard (one non-blocking XREADGROUP per shard in one
pipelined trip, which a cluster client splits per node; when all are empty it blocks on one
shard, a different one each turn), claims stale entries per shard and acknowledges each entry
on its own shard. The entries of one turn, whatever their shard, are stored in one transaction.

Each event is checked on its own (tailored.events.schema.stored_event_problem, the API's own
check): one that cannot be stored, or an entry that cannot be read at all (a poison entry), is
moved to the dead-letter stream `tl:v1:events:dead` with its reason, logged and counted, while the
good events of the same entry are stored. Nothing blocks the stream. A transient failure (Redis
or the database unreachable) leaves the entries unacknowledged, so they are claimed again once idle.

The cart watch is the sorted set `tl:v1:cart-watch`: visitor id -> the epoch second their cart
counts as abandoned (latest add_to_cart + CART_ABANDONMENT_MINUTES). It is only a schedule: what
the cart holds is computed from the persisted `Event` rows when the time comes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import redis
from django.db import (
    DataError,
    IntegrityError,
    OperationalError,
    close_old_connections,
    transaction,
)
from django.db.models import Max

from tailored import conf, erasure, holdout, redis_guard, seen_items, webhooks
from tailored.core.types import Event, Profile, Window
from tailored.events.schema import STORED_LENGTHS, stored_event_problem
from tailored.events.stream import (
    CART_WATCH_KEY,
    CONSUMER_GROUP,
    DEAD_LETTER_KEY,
    DEAD_LETTER_MAXLEN,
    STREAM_KEY,
    appended_at,
    erasure_times,
    event_from_json,
    event_to_json,
    is_analytics_only,
    read_entry,
    stream_keys,
)
from tailored.experiments.counting import flush_due as flush_experiment_counts
from tailored.insights import counting as insights_counting
from tailored.ml import scoring
from tailored.ml.features import FEATURE_WINDOWS
from tailored.models import Event as EventRow
from tailored.models import WebhookDelivery

logger = logging.getLogger(__name__)

CART_ABANDONED = "cart_abandoned"
CART_TYPES = ("add_to_cart", "remove_from_cart")
# A worker holds a due cart this long while it builds the webhook; if it dies, the cart comes due
# again when the lease runs out (and the duplicate check in `abandon_cart` stops a second webhook).
CART_LEASE_SECONDS = 300
DUE_CARTS_PER_TURN = 100
# Pause after an error before the next turn: doubles per consecutive error, up to this.
MAX_ERROR_PAUSE_SECONDS = 30.0
# Redis (a single one or a cluster mid-failover: redis_guard.OUTAGE) or the database unreachable.
UNREACHABLE = (*redis_guard.OUTAGE, OperationalError)

# A purchase ends the watch only when the watched add_to_cart is not later than the purchase: a
# redelivered old purchase must not cancel the watch of a newer cart.
UNWATCH_IF_NOT_LATER = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
    return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""
# Atomically take a due cart: exactly one worker sees its score <= now and moves it to the lease.
CLAIM_IF_DUE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
    return 1
end
return 0
"""
# Drop the watch unless a new add_to_cart moved it while we held the lease.
RELEASE_IF_LEASED = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
    return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

StreamEntry = tuple[str, Mapping[str, str] | None]
# The entries read from one stream shard: (stream key, entries).
ShardBatch = tuple[str, Sequence[StreamEntry]]


@dataclass
class Consumer:
    """One worker's identity in the group and its loop settings."""

    name: str
    batch: int = 100
    block_ms: int = 2000
    claim_idle_seconds: float = 60.0
    # The stream shards this consumer reads (tailored.events.stream.stream_keys).
    streams: tuple[str, ...] = (STREAM_KEY,)
    # Per shard, where the next XAUTOCLAIM scan of the pending list starts ("0-0": the beginning).
    claim_cursors: dict[str, str] = field(default_factory=dict)
    turns: int = 0  # which shard an idle turn blocks on (several shards only)

    @classmethod
    def from_settings(cls, name: str, **overrides: Any) -> Consumer:
        values = {
            "batch": int(conf.get("WORKER_BATCH")),
            "claim_idle_seconds": float(conf.get("WORKER_CLAIM_IDLE_SECONDS")),
            "streams": tuple(stream_keys(int(conf.get("EVENT_STREAM_SHARDS")))),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(name=name, **values)


@dataclass
class StepResult:
    """What one or more turns of the loop did."""

    entries: int = 0
    events: int = 0
    poison: int = 0
    dead_letters: int = 0
    erased_skipped: int = 0
    carts_abandoned: int = 0
    webhooks_delivered: int = 0
    webhooks_retrying: int = 0
    webhooks_failed: int = 0
    activations_queued: int = 0
    activations_delivered: int = 0
    activations_failed: int = 0

    def __add__(self, other: StepResult) -> StepResult:
        return StepResult(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        text = f"{self.entries} entries, {self.events} events, {self.poison} poison"
        if self.dead_letters:
            text += f", {self.dead_letters} dead-lettered ({DEAD_LETTER_KEY})"
        if self.erased_skipped:
            text += f", {self.erased_skipped} of erased visitors skipped"
        if self.carts_abandoned:
            text += f", {self.carts_abandoned} carts abandoned"
        if self.webhooks_delivered or self.webhooks_retrying or self.webhooks_failed:
            text += (
                f", webhooks {self.webhooks_delivered} delivered / {self.webhooks_retrying} retrying"
                f" / {self.webhooks_failed} failed"
            )
        if self.activations_queued or self.activations_delivered or self.activations_failed:
            text += (
                f", activation sends {self.activations_queued} queued / {self.activations_delivered} delivered"
                f" / {self.activations_failed} failed"
            )
        return text


@dataclass
class DecodedEntry:
    entry_id: str
    visitor_id: str
    events: list[Event]
    rows: list[EventRow] = field(default_factory=list)
    analytics_only: bool = False  # aggregate counts only: never acted on for this visitor alone
    stream: str = STREAM_KEY  # the shard stream it came from


@dataclass
class DeadLetter:
    """An event (or a whole unreadable entry) the worker cannot store, and why."""

    entry_id: str
    visitor_id: str
    payload: Any
    reason: str
    whole_entry: bool = False


def connect(url: str, block_ms: int, cluster: bool = False) -> redis.Redis:
    """A Redis client for the worker: unlike the web's, its socket timeout outlasts a blocking read.
    A cluster URL (or `cluster`, REDIS_CLUSTER) gives a cluster client (tailored.redis_guard)."""
    options = {
        "decode_responses": True,
        "socket_timeout": block_ms / 1000 + 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
    }
    if redis_guard.is_cluster(url, {"REDIS_CLUSTER": cluster}):
        return redis_guard.cluster_from_url(url, redis_guard.ClusterClient, **options)
    return redis.Redis.from_url(url, **options)


def ensure_group(client: redis.Redis, streams: Sequence[str] = (STREAM_KEY,)) -> None:
    """Create the consumer group of each stream shard (and the stream) if missing; it starts at the
    stream's beginning."""
    for stream in streams:
        try:
            client.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def claim_stale(client: redis.Redis, consumer: Consumer) -> list[ShardBatch]:
    """Take over entries another consumer read and left unacknowledged for too long (per shard)."""
    batches: list[ShardBatch] = []
    for stream in consumer.streams:
        cursor, entries, *_deleted = client.xautoclaim(
            stream,
            CONSUMER_GROUP,
            consumer.name,
            min_idle_time=int(consumer.claim_idle_seconds * 1000),
            start_id=consumer.claim_cursors.get(stream, "0-0"),
            count=consumer.batch,
        )
        # Redis scans the pending list a slice at a time; the cursor resumes the scan next turn.
        consumer.claim_cursors[stream] = cursor
        if entries:
            logger.warning("%s claimed %d stale entries of %s from dead consumers", consumer.name, len(entries), stream)
            batches.append((stream, entries))
    return batches


def read_new_batches(client: redis.Redis, consumer: Consumer, count: int, block: bool = True) -> list[ShardBatch]:
    """Entries never delivered to any consumer of the group, from every shard."""
    # XREADGROUP's BLOCK 0 waits forever: "don't block" must be no BLOCK at all.
    block_ms = consumer.block_ms if block and consumer.block_ms > 0 else None
    if len(consumer.streams) == 1:
        stream = consumer.streams[0]
        response = client.xreadgroup(CONSUMER_GROUP, consumer.name, {stream: ">"}, count=count, block=block_ms)
        entries = _stream_entries(response)
        return [(stream, entries)] if entries else []
    # One XREADGROUP per shard, not one over all: on a cluster the shards are in different slots.
    pipe = client.pipeline(transaction=False)
    for stream in consumer.streams:
        pipe.xreadgroup(CONSUMER_GROUP, consumer.name, {stream: ">"}, count=count)
    batches = [(stream, entries) for stream, reply in zip(consumer.streams, pipe.execute(), strict=True)
               if (entries := _stream_entries(reply))]
    if batches or block_ms is None:
        return batches
    # Nothing anywhere: wait on one shard, a different one each idle turn, for a share of the
    # block time, so an entry on another shard waits at most block_ms / N.
    consumer.turns += 1
    stream = consumer.streams[consumer.turns % len(consumer.streams)]
    wait_ms = max(block_ms // len(consumer.streams), 10)
    entries = _stream_entries(client.xreadgroup(CONSUMER_GROUP, consumer.name, {stream: ">"}, count=count, block=wait_ms))
    return [(stream, entries)] if entries else []


def read_new(client: redis.Redis, consumer: Consumer, count: int, block: bool = True) -> list[StreamEntry]:
    """`read_new_batches` as one list (for one stream, or when the shard does not matter)."""
    return [entry for _stream, entries in read_new_batches(client, consumer, count, block) for entry in entries]


def read_own_pending(client: redis.Redis, consumer: Consumer, stream: str = STREAM_KEY) -> list[StreamEntry]:
    """Entries this consumer name read from `stream` before a restart and never acknowledged."""
    response = client.xreadgroup(CONSUMER_GROUP, consumer.name, {stream: "0"}, count=consumer.batch)
    return _stream_entries(response)


def _stream_entries(response: Any) -> list[StreamEntry]:
    # The RESP2 answer of a one-stream read: [[stream, [(id, fields), ...]]] or None.
    return [entry for _stream, entries in response or () for entry in entries]


# -- Processing a batch ---------------------------------------------------------------------------


def handle_entries(client: redis.Redis, entries: Sequence[StreamEntry], now: float | None = None, stream: str = STREAM_KEY) -> StepResult:
    """`handle_batches` for the entries of one stream."""
    return handle_batches(client, [(stream, entries)], now)


def handle_batches(client: redis.Redis, batches: Sequence[ShardBatch], now: float | None = None) -> StepResult:
    """Persist, watch carts, dead-letter, then acknowledge: the heart of at-least-once delivery.
    The entries of every shard in `batches` are stored together; each is acknowledged on its own
    shard. `now` (epoch seconds, for tests) is the time triggers are evaluated at."""
    entries = [entry for _stream, shard_entries in batches for entry in shard_entries]
    if not entries:
        return StepResult()
    decoded, dead = [], []
    for stream, shard_entries in batches:
        shard_decoded, shard_dead = decode_entries(shard_entries, stream)
        decoded += shard_decoded
        dead += shard_dead
    decoded, dead, skipped = drop_erased(client, decoded, dead)
    dead += persist(decoded)
    skipped.update(unstore_erased_meanwhile(client, decoded))
    stored = [entry for entry in decoded if entry.events]
    watch_carts(client, stored, delay_seconds=float(conf.get("CART_ABANDONMENT_MINUTES")) * 60)
    now = time.time() if now is None else now
    plan = plan_triggers(stored)
    profiles = read_profiles(stored, plan, now)  # one read for scoring, insights and triggers
    # Persona and scores follow new events; `profiles` gets them too, for what reads them next.
    scoring.score_visitors({entry.visitor_id for entry in stored}, now, profiles)
    seen_items.add(seen_items.from_entries(stored), client=client)  # never recommended again (issue 22)
    send_to_dead_letters(client, dead)
    count_insights(client, stored, len(dead), now, profiles)  # before the acknowledgement: a crash repeats, once
    activations = observe_triggers(client, stored, now, plan, profiles)  # after scoring: scores cross thresholds (issue 20)
    forget_erased_during(client, stored)
    erasure.note_skipped_by_worker(skipped)
    # Acknowledged only now that the rows are committed: a crash before this line means the
    # entries are claimed and processed again, and the unique constraint ignores the repeats.
    # Then deleted: the stream keeps only what no worker has stored (and so erasure has less to find).
    acknowledge(client, batches)
    return StepResult(
        entries=len(entries),
        events=sum(len(entry.events) for entry in stored),
        poison=sum(letter.whole_entry for letter in dead),
        dead_letters=len(dead),
        erased_skipped=sum(skipped.values()),
        activations_queued=activations,
    )


def acknowledge(client: redis.Redis, batches: Sequence[ShardBatch]) -> None:
    """XACK and XDEL each shard's entries on that shard (one pipelined trip, split per node on a
    cluster: each shard is one slot)."""
    pipe = client.pipeline(transaction=False)
    for stream, shard_entries in batches:
        done = [entry_id for entry_id, _fields in shard_entries]
        if done:
            pipe.xack(stream, CONSUMER_GROUP, *done)
            pipe.xdel(stream, *done)
    pipe.execute()


def _appended_before_erasure(entry_id: str, visitor_id: str, erased: Mapping[str, float]) -> bool:
    return visitor_id in erased and appended_at(entry_id) <= erased[visitor_id]


def drop_erased(
    client: redis.Redis, decoded: list[DecodedEntry], dead: list[DeadLetter]
) -> tuple[list[DecodedEntry], list[DeadLetter], Counter]:
    """Leave out what erased visitors sent before their erasure: neither stored nor dead-lettered.
    Returns the rest and the count left out per visitor."""
    erased = erasure_times(client, {entry.visitor_id for entry in decoded})
    skipped: Counter = Counter()
    if not erased:
        return decoded, dead, skipped
    kept: list[DecodedEntry] = []
    for entry in decoded:
        if _appended_before_erasure(entry.entry_id, entry.visitor_id, erased):
            skipped[entry.visitor_id] += len(entry.events)
        else:
            kept.append(entry)
    kept_letters = []
    for letter in dead:
        if _appended_before_erasure(letter.entry_id, letter.visitor_id, erased):
            skipped[letter.visitor_id] += 1
        else:
            kept_letters.append(letter)
    return kept, kept_letters, skipped


def unstore_erased_meanwhile(client: redis.Redis, decoded: list[DecodedEntry]) -> Counter:
    """Delete again the rows just stored for a visitor erased while this batch was in hand: the
    erasure deleted the rows it found before this commit, and its tombstone (written first) is
    seen here. Returns the count per visitor."""
    erased = erasure_times(client, {entry.visitor_id for entry in decoded if entry.events})
    skipped: Counter = Counter()
    for entry in decoded:
        if entry.events and _appended_before_erasure(entry.entry_id, entry.visitor_id, erased):
            EventRow.objects.filter(visitor_id=entry.visitor_id, event_id__in=[e.id for e in entry.events]).delete()
            skipped[entry.visitor_id] += len(entry.events)
            entry.events, entry.rows = [], []
    return skipped


def forget_erased_during(client: redis.Redis, stored: list[DecodedEntry]) -> set[str]:
    """The last tombstone check: a visitor erased after `unstore_erased_meanwhile` looked, while
    this batch wrote their carts, scores, seen items, insights and trigger states, is erased
    again, so none of those writes outlives the erasure. Returns the ids erased again."""
    erased = erasure_times(client, {entry.visitor_id for entry in stored})
    again = {entry.visitor_id for entry in stored if _appended_before_erasure(entry.entry_id, entry.visitor_id, erased)}
    for visitor_id in sorted(again):
        erasure.erase_again(visitor_id)
    return again


def decode_entries(entries: Iterable[StreamEntry], stream: str = STREAM_KEY) -> tuple[list[DecodedEntry], list[DeadLetter]]:
    """Decode entries into rows, each event on its own; what cannot be stored as dead letters."""
    decoded: list[DecodedEntry] = []
    dead: list[DeadLetter] = []
    for entry_id, entry_fields in entries:
        if not entry_fields:
            # Deleted while pending (its visitor was erased, or it aged past the retention
            # period): re-read from the pending list without fields. Nothing to store; acknowledged.
            continue
        try:
            visitor_id, items = read_entry(entry_fields)
            if not 0 < len(visitor_id) <= STORED_LENGTHS["visitor_id"]:
                raise ValueError(f"the visitor id is not 1 to {STORED_LENGTHS['visitor_id']} characters")
        except Exception as exc:
            # Whatever is wrong with one entry must not stop the others.
            reason = f"unreadable entry: {type(exc).__name__}: {exc}"
            dead.append(DeadLetter(entry_id, "", dict(entry_fields or {}), reason, whole_entry=True))
            continue
        entry = DecodedEntry(entry_id, visitor_id, [], analytics_only=is_analytics_only(entry_fields), stream=stream)
        for item in items:
            try:
                event = event_from_json(item)
                entry.rows.append(event_row(visitor_id, event))
                entry.events.append(event)
            except Exception as exc:
                dead.append(DeadLetter(entry_id, visitor_id, item, f"{type(exc).__name__}: {exc}"))
        decoded.append(entry)
    return decoded, dead


def event_row(visitor_id: str, event: Event) -> EventRow:
    """The database row of one event; ValueError when the schema says it cannot be stored as it is
    (checked here because SQLite neither enforces lengths nor, under INSERT OR IGNORE, reports a
    missing value: the event would vanish on SQLite and fail the batch on PostgreSQL)."""
    problem = stored_event_problem(event)
    if problem:
        raise ValueError(f"{problem[0]} {problem[1]}")
    return EventRow(
        visitor_id=visitor_id,
        event_id=event.id,
        type=event.type,
        ts=datetime.fromtimestamp(event.ts, tz=UTC),
        category=event.category or "",
        item=event.item or "",
        url=event.url or "",
        attrs=dict(event.attrs),
    )


def persist(decoded: Sequence[DecodedEntry]) -> list[DeadLetter]:
    """Insert every row in one transaction; returns the events the database refused.

    Repeats are ignored (ON CONFLICT DO NOTHING). If the database refuses the batch's data, each
    entry is retried alone, and an entry it refuses event by event, so a bad event costs only
    itself. Connection errors propagate: the entries then stay unacknowledged and are retried.
    """
    try:
        _insert([row for entry in decoded for row in entry.rows])
        return []
    except (DataError, IntegrityError) as exc:
        logger.warning("batch refused by the database (%s); storing its entries one by one", exc)
    refused: list[DeadLetter] = []
    for entry in decoded:
        try:
            _insert(entry.rows)
        except (DataError, IntegrityError):
            refused += _insert_one_by_one(entry)
    return refused


def _insert_one_by_one(entry: DecodedEntry) -> list[DeadLetter]:
    """Store the events of an entry the database refused one at a time; keep only the stored ones
    on the entry (cart watch, scoring) and return the refused ones."""
    kept: list[tuple[Event, EventRow]] = []
    refused: list[DeadLetter] = []
    for event, row in zip(entry.events, entry.rows, strict=True):
        try:
            _insert([row])
            kept.append((event, row))
        except (DataError, IntegrityError) as exc:
            refused.append(DeadLetter(entry.entry_id, entry.visitor_id, event_to_json(event), f"refused by the database: {exc}"))
    entry.events, entry.rows = [event for event, _ in kept], [row for _, row in kept]
    return refused


def _insert(rows: list[EventRow]) -> None:
    with transaction.atomic():
        EventRow.objects.bulk_create(rows, ignore_conflicts=True)


def send_to_dead_letters(client: redis.Redis, dead: Sequence[DeadLetter]) -> None:
    """Append what could not be stored to the dead-letter stream (one round trip) and log each:
    written before the entries are acknowledged, so a crash repeats a dead letter, never loses one."""
    if not dead:
        return
    pipe = client.pipeline(transaction=False)
    for letter in dead:
        logger.error("dead letter from entry %s (visitor %s): %s", letter.entry_id, letter.visitor_id or "?", letter.reason)
        fields = {
            "v": letter.visitor_id,
            "entry": letter.entry_id,
            "e": json.dumps(letter.payload, default=repr)[:65536],
            "reason": letter.reason[:1024],
        }
        pipe.xadd(DEAD_LETTER_KEY, fields, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
    pipe.execute()


# -- The batch's profiles --------------------------------------------------------------------------


def read_profiles(stored: Sequence[DecodedEntry], plan: Any, now: float) -> dict[str, Profile] | None:
    """The profiles that scoring, the insight counts (segments, device, country) and the state
    triggers read for this batch, in one read: the visitors any of them needs, with the union of
    the windows they ask for (a profile read with more windows holds the same values). None when
    the read fails for a reason other than an outage: each then reads on its own, as it can."""
    visitors: set[str] = set()
    windows: set[Window] = set()
    try:
        if scoring.needs_profiles():
            visitors.update(entry.visitor_id for entry in stored)
            windows.update(FEATURE_WINDOWS)
        counted, segment_windows = insights_counting.profile_needs(stored)
        visitors |= counted
        windows |= segment_windows
        if plan is not None:
            visitors.update(plan.known)
            windows |= plan.windows
        if not visitors:
            return {}
        return conf.get_profile_store().get_many(sorted(visitors), now, frozenset(windows))
    except UNREACHABLE:
        raise
    except Exception:
        logger.exception("the batch's profiles could not be read at once; each step reads its own")
        return None


# -- Insights (issue 17) ---------------------------------------------------------------------------


def count_insights(
    client: redis.Redis, stored: Sequence[DecodedEntry], dead_letters: int, now: float | None = None,
    profiles: Mapping[str, Profile] | None = None,
) -> None:
    """Impressions, clicks, conversions and event volume into the hourly insight counters, each
    entry once (tailored.insights.counting). A bug there is logged, never a stuck stream; an
    unreachable Redis or database still fails the turn, which is retried."""
    try:
        insights_counting.count_entries(client, stored, dead_letters, now, profiles)
    except UNREACHABLE:
        raise
    except Exception:
        logger.exception("insight counts of this batch skipped")


def insights_turn(client: redis.Redis, now: float) -> None:
    """Flush the insight counters (every few seconds) and run the anomaly checks (hourly)."""
    from tailored.insights import alerts  # it sends webhooks and mail: loaded on first use

    insights_counting.flush_due(client)
    alerts.check_due(client, now)


# -- Activation (issue 20) -------------------------------------------------------------------------


def plan_triggers(stored: Sequence[DecodedEntry]) -> Any:
    """Which known visitors the state triggers evaluate in this batch, with which windows
    (tailored.activation.triggers.StatePlan), or None. A bug is logged (observe tries again)."""
    from tailored.activation import triggers  # the trigger table is read only by workers

    try:
        return triggers.state_plan(stored)
    except UNREACHABLE:
        raise
    except Exception:
        logger.exception("activation triggers of this batch could not be planned")
        return None


def observe_triggers(
    client: redis.Redis, stored: Sequence[DecodedEntry], now: float | None, plan: Any = None,
    profiles: Mapping[str, Profile] | None = None,
) -> int:
    """State triggers and abandonment schedules for this batch (tailored.activation.triggers).
    Like the insight counts: a bug is logged, an unreachable service fails the turn (retried)."""
    from tailored.activation import triggers  # the trigger table is read only by workers

    try:
        return triggers.observe(client, stored, now, plan, profiles)
    except UNREACHABLE:
        raise
    except Exception:
        logger.exception("activation triggers of this batch skipped")
        return 0


def activation_turn(client: redis.Redis, now: float, result: StepResult) -> None:
    """Due abandonment checks, catalog changes, then the sends that are due."""
    from tailored.activation import catalog, sending, triggers

    result.activations_queued += triggers.fire_due(client, now) + catalog.catalog_turn(client, now)
    sent = sending.deliver_due(datetime.fromtimestamp(now, tz=UTC))
    result.activations_delivered, result.activations_failed = sent["delivered"], sent["failed"]


# -- Cart abandonment -----------------------------------------------------------------------------


def watch_carts(client: redis.Redis, decoded: Iterable[DecodedEntry], delay_seconds: float) -> None:
    """Schedule (or push back) the abandonment check of visitors who added to their cart, and end
    it for visitors who bought; one pipelined round trip."""
    latest_add: dict[str, float] = {}
    latest_purchase: dict[str, float] = {}
    by_type = {"add_to_cart": latest_add, "purchase": latest_purchase}
    for entry in decoded:
        for event in entry.events:
            if entry.analytics_only and event.type == "add_to_cart":
                continue  # no cart-abandonment webhook without personalization consent
            latest = by_type.get(event.type)
            if latest is not None:
                latest[entry.visitor_id] = max(event.ts, latest.get(entry.visitor_id, event.ts))
    if not latest_add and not latest_purchase:
        return
    unwatch = client.register_script(UNWATCH_IF_NOT_LATER)
    pipe = client.pipeline(transaction=False)
    for visitor_id, ts in latest_add.items():
        # GT: a redelivered older add_to_cart never moves the check earlier.
        pipe.zadd(CART_WATCH_KEY, {visitor_id: ts + delay_seconds}, gt=True)
    for visitor_id, ts in latest_purchase.items():
        unwatch(keys=[CART_WATCH_KEY], args=[visitor_id, ts + delay_seconds], client=pipe)
    pipe.execute()


# Event times go through the database at microsecond precision (rounded): compare with slack.
TIME_TOLERANCE = 1e-3


def claim_due_cart(client: redis.Redis, visitor_id: str, now: float) -> float | None:
    """Take a due cart for this worker: the lease's score, or None when it is not due (any more).
    Atomic, so of two workers popping the same cart exactly one wins."""
    lease_until = now + CART_LEASE_SECONDS
    won = client.register_script(CLAIM_IF_DUE)(keys=[CART_WATCH_KEY], args=[visitor_id, now + TIME_TOLERANCE, lease_until])
    return lease_until if won else None


def fire_due_carts(client: redis.Redis, now: float) -> int:
    """Enqueue `cart_abandoned` for every due cart this worker wins; returns how many fired."""
    due = client.zrangebyscore(CART_WATCH_KEY, "-inf", now + TIME_TOLERANCE, start=0, num=DUE_CARTS_PER_TURN)
    delay_seconds = float(conf.get("CART_ABANDONMENT_MINUTES")) * 60
    release = client.register_script(RELEASE_IF_LEASED)
    fired = 0
    for visitor_id in due:
        lease_until = claim_due_cart(client, visitor_id, now)
        if lease_until is None:
            continue  # another worker took it
        fired += abandon_cart(client, visitor_id, now, delay_seconds)
        release(keys=[CART_WATCH_KEY], args=[visitor_id, lease_until])
    return fired


def abandon_cart(client: redis.Redis, visitor_id: str, now: float, delay_seconds: float) -> bool:
    """Enqueue the `cart_abandoned` webhook for one visitor whose check is due, if the cart (as the
    database has it) still holds items and has been left alone long enough."""
    if not webhooks.subscribers(CART_ABANDONED):
        return False
    items, updated_at = open_cart(visitor_id)
    if not items or updated_at is None:
        return False
    if updated_at + delay_seconds > now + TIME_TOLERANCE:
        # The database knows a newer cart event than the watch did (its ZADD is on its way):
        # check again later rather than fire early. This replaces the lease, which is kept.
        client.zadd(CART_WATCH_KEY, {visitor_id: updated_at + delay_seconds})
        return False
    payload = {
        "topic": CART_ABANDONED,
        "visitor_id": visitor_id,
        "detected_at": _iso(now),
        "items": items,
        "cart_updated_at": _iso(updated_at),
    }
    # A worker that died after enqueuing but before releasing its lease leaves the cart to fire
    # again: the same visitor and cart time means the same abandonment.
    if WebhookDelivery.objects.filter(
        topic=CART_ABANDONED, payload__visitor_id=visitor_id, payload__cart_updated_at=payload["cart_updated_at"]
    ).exists():
        return False
    webhooks.enqueue(CART_ABANDONED, payload, now=datetime.fromtimestamp(now, tz=UTC))
    return True


def open_cart(visitor_id: str) -> tuple[list[int | str], float | None]:
    """The product ids still in the visitor's cart (added and not removed since their last
    purchase, in the order first added) and the epoch time the cart last changed."""
    last_purchase = EventRow.objects.filter(visitor_id=visitor_id, type="purchase").aggregate(last=Max("ts"))["last"]
    events = EventRow.objects.filter(visitor_id=visitor_id, type__in=CART_TYPES).exclude(item="")
    if last_purchase is not None:
        events = events.filter(ts__gt=last_purchase)
    quantities: dict[str, int] = {}
    updated_at = None
    for kind, item, attrs, ts in events.order_by("ts", "pk").values_list("type", "item", "attrs", "ts"):
        quantity = attrs.get("quantity") if isinstance(attrs, dict) else None
        if kind == "add_to_cart":
            quantities[item] = quantities.get(item, 0) + (quantity if isinstance(quantity, int) else 1)
        else:
            # A removal without a quantity takes the whole line out.
            quantities[item] = (quantities.get(item, 0) - quantity) if isinstance(quantity, int) else 0
        updated_at = ts.timestamp()
    items = [int(item) if item.isdigit() else item for item, left in quantities.items() if left > 0]
    return items, updated_at


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


# -- The loop -------------------------------------------------------------------------------------


def process_once(client: redis.Redis, consumer: Consumer, now: float | None = None) -> StepResult:
    """One turn of the loop: claim stale entries, read new ones, process them, fire due carts and
    send due webhooks. `now` (epoch seconds) is for tests; it defaults to the clock."""
    batches = claim_stale(client, consumer)
    claimed = sum(len(entries) for _stream, entries in batches)
    if claimed < consumer.batch:
        # Block only when there is nothing to do yet, so claimed work is not held up.
        batches += read_new_batches(client, consumer, consumer.batch - claimed, block=not claimed)
    now = time.time() if now is None else now
    result = handle_batches(client, batches, now)
    result.carts_abandoned = fire_due_carts(client, now)
    flush_experiment_counts()  # hourly experiment counters from Redis into rows, every few seconds
    holdout.flush_due()  # and the global holdout's (issue 9 item 7)
    insights_turn(client, now)  # insight counters into rows; hourly anomaly checks (issue 17)
    erasure.complete_erasures_due()  # consent withdrawn while Redis was down (issue 14 item 2)
    activation_turn(client, now, result)  # triggers due, catalog changes, sends (issue 20)
    sent = webhooks.deliver_due(datetime.fromtimestamp(now, tz=UTC))
    result.webhooks_delivered, result.webhooks_retrying, result.webhooks_failed = (
        sent["delivered"], sent["retrying"], sent["failed"],
    )
    return result


def recover_own_pending(client: redis.Redis, consumer: Consumer) -> StepResult:
    """Process what this consumer name read before a restart and never acknowledged, so a worker
    restarted under the same name does not wait for the claim idle time to pass."""
    total = StepResult()
    for stream in consumer.streams:
        while entries := read_own_pending(client, consumer, stream):
            total += handle_entries(client, entries, stream=stream)
    return total


def run(
    client: redis.Redis,
    consumer: Consumer,
    stop: threading.Event,
    report: Callable[[str], None],
    once: bool = False,
    report_every: float = 5.0,
    until_empty: bool = False,
    settle: bool = False,
) -> StepResult:
    """Loop until `stop` is set (or one turn with `once`, or, with `until_empty`, until a turn finds
    nothing and the streams are empty: draining a shard layout), reporting progress every few
    seconds. Errors are logged and the loop goes on after a pause; the batch in hand is always
    finished. `settle` (the worker process, not a test or a caller's thread): `settle_heap` after
    the first turn that stored events."""
    total = pending = StepResult()
    last_report, errors, recovered = time.monotonic(), 0, False
    while not stop.is_set():
        try:
            result = StepResult()
            if not recovered:
                ensure_group(client, consumer.streams)
                result, recovered = recover_own_pending(client, consumer), True
            result += process_once(client, consumer)
            errors = 0
        except Exception as exc:
            if once:
                raise
            errors += 1
            pause = min(2.0 ** (errors - 1), MAX_ERROR_PAUSE_SECONDS)
            # An unreachable service is said in one line; anything else gets its traceback.
            logger.error(
                "worker %s: turn failed (%s: %s); retrying in %.0f s",
                consumer.name, type(exc).__name__, exc, pause,
                exc_info=not isinstance(exc, UNREACHABLE),
            )
            _after_error(client, consumer)
            stop.wait(pause)
            continue
        total, pending = total + result, pending + result
        if settle and result:  # the first turn that stored events loaded what every turn uses
            settle_heap()
            settle = False
        if pending and (once or time.monotonic() - last_report >= report_every):
            report(f"{consumer.name}: {pending.describe()} (total {total.entries} entries, {total.events} events)")
            pending, last_report = StepResult(), time.monotonic()
        if once or (until_empty and not result and streams_empty(client, consumer.streams)):
            break
    if pending:
        report(f"{consumer.name}: {pending.describe()} (total {total.entries} entries, {total.events} events)")
    return total


def settle_heap() -> None:
    """Take what the process has loaded so far (Django, Wagtail, the models, compiled segments,
    trained models) out of the garbage collector's view. A worker runs for days, and each full
    collection otherwise walks those hundreds of thousands of objects again: in
    bench/insights_counting.py's flow full collections took 15-16% of the worker's time (3% after),
    in pauses of about a quarter of a second. Objects freed later are freed as before (reference counting); only a
    cycle among the frozen ones would never be collected, and they live as long as the process."""
    gc.collect()
    gc.freeze()


def streams_empty(client: redis.Redis, streams: Sequence[str]) -> bool:
    """Whether every stream shard is empty (entries are deleted once stored: none left to store)."""
    return all(client.xlen(stream) == 0 for stream in streams)


def _after_error(client: redis.Redis, consumer: Consumer) -> None:
    # A dropped database connection is replaced on the next query; a deleted stream (FLUSHALL,
    # a new Redis) gets its group back.
    close_old_connections()
    with contextlib.suppress(redis.RedisError):
        ensure_group(client, consumer.streams)


def leave_group(client: redis.Redis, consumer: Consumer) -> None:
    """Remove this consumer from the group when it holds no pending entries, so short-lived names
    (host-pid) do not pile up in XINFO CONSUMERS. A consumer with pending entries is kept: deleting
    it would drop them."""
    for stream in consumer.streams:
        try:
            pending = client.xpending_range(stream, CONSUMER_GROUP, "-", "+", 1, consumername=consumer.name)
            if not pending:
                client.xgroup_delconsumer(stream, CONSUMER_GROUP, consumer.name)
        except redis.RedisError as exc:
            logger.warning("worker %s could not leave the group of %s: %s", consumer.name, stream, exc)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask the loop to stop after the batch in hand."""

    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("received %s: stopping after the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
