"""Unique-visitor exposures and conversions, counted per hour and flushed to `ExperimentCount` rows.

Two backends with one contract (tests/experiments/test_counting_contract.py runs both): Redis
when the profile store is Redis, an in-process one beside the memory store.

Redis keys of one experiment share the hash tag `{<experiment key>}` (Redis Cluster safe, so each
Lua script touches one slot):

    tl:v1:xp:{k}:exposed      hash  visitor -> "arm|exposed at|x"   (HSETNX: the first exposure wins)
    tl:v1:xp:{k}:conv:<goal>  set   visitors who converted on the goal (SADD: once per goal)
    tl:v1:xp:{k}:goals        set   every goal a conversion set was written for (the registry):
                                    erasure, retention and reset clean the sets of former goals too
    tl:v1:xp:{k}:hours        hash  "<epoch hour>|<arm>|<goal or empty>|<stat>" -> integer
    tl:v1:xp:{k}:flushing     the hours hash being flushed, with its batch id in field "_batch"

With EVENT_STREAM_SHARDS = N > 1 (issue 19) one experiment's keys are split by visitor shard
(tailored.sharding), `tl:v1:xp:{<shard tag>}:<k>:...`, so a large experiment's exposures do not
all land on one cluster node: a visitor's exposure, conversions and hourly counts go to their
shard (the scripts still touch one slot), reads add the shards up and the flush takes each
shard's batch on its own.

Stats: n (exposures), sx and sx2 (Σx, Σx² of the covariate) on exposure rows; c (conversions)
and sxy (Σx over converters) on goal rows. A conversion counts only for a visitor already exposed,
not earlier than the exposure (with CLOCK_SKEW_SECONDS of slack for the client's clock), once
per goal.

Flush (`flush`): a Lua script renames the hours hash to the flushing key and stamps a batch id;
a flushing key left by a crash is taken again first. The rows are incremented (F()) and the
batch id recorded in one transaction; only then is the flushing key deleted (if it still holds
that batch). A retry after a crash between commit and delete finds the batch id and skips it:
nothing is lost and nothing counted twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from django.db import IntegrityError, transaction
from django.db.models import F

from tailored import conf
from tailored.sharding import shard_tags, visitor_tag

from .models import Experiment, ExperimentCount, FlushBatch

logger = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 120.0
EXPOSURE_STATS = ("n", "sx", "sx2")
CONVERSION_STATS = ("c", "sxy")

EXPOSE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4]) == 0 then return 0 end
local h = ARGV[5] .. '|' .. ARGV[2] .. '||'
local x = tonumber(ARGV[4])
redis.call('HINCRBY', KEYS[2], h .. 'n', 1)
redis.call('HINCRBY', KEYS[2], h .. 'sx', x)
redis.call('HINCRBY', KEYS[2], h .. 'sx2', x * x)
return 1
"""
CONVERT = """
local seen = redis.call('HGET', KEYS[1], ARGV[1])
if not seen then return 0 end
local arm, at, x = string.match(seen, '^(.*)|([^|]*)|([^|]*)$')
if tonumber(ARGV[3]) < tonumber(at) - tonumber(ARGV[5]) then return 0 end
redis.call('SADD', KEYS[4], ARGV[2])
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return 0 end
local h = ARGV[4] .. '|' .. arm .. '|' .. ARGV[2] .. '|'
redis.call('HINCRBY', KEYS[2], h .. 'c', 1)
redis.call('HINCRBY', KEYS[2], h .. 'sxy', tonumber(x))
return 1
"""
TAKE = """
if redis.call('EXISTS', KEYS[2]) == 0 then
    if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
    redis.call('RENAME', KEYS[1], KEYS[2])
    redis.call('HSET', KEYS[2], '_batch', ARGV[1])
end
return redis.call('HGETALL', KEYS[2])
"""
DROP_IF_BATCH = """
if redis.call('HGET', KEYS[1], '_batch') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Batch:
    """Counts taken for flushing: (epoch hour, arm, goal, stat) -> value, with the batch id."""

    batch_id: str
    values: Mapping[tuple[int, str, str, str], int]


class Counters(Protocol):
    def expose(self, experiment: str, arm: str, visitor_id: str, now: float, x: int = 0) -> bool:
        """Count the visitor's first exposure to the experiment; False when already exposed."""

    def convert(self, experiment: str, goal: str, visitor_id: str, event_ts: float, now: float) -> bool:
        """Count a conversion on `goal` for an exposed visitor, once; False when not counted."""

    def exposed_arm(self, experiment: str, visitor_id: str) -> str | None:
        """The arm the visitor was exposed to, or None."""

    def take(self, experiment: str) -> Batch | None:
        """The counts not yet flushed (the unfinished batch first), or None when there are none."""

    def done(self, experiment: str, batch_id: str) -> None:
        """Forget a batch once it is in the database."""

    def pending(self, experiment: str) -> Mapping[tuple[int, str, str, str], int]:
        """Counts not yet flushed (read only), for results between flushes."""

    def forget(self, visitor_id: str, experiments: Iterable[tuple[str, Iterable[str]]]) -> None:
        """Remove the visitor's id from the experiments' sets (erasure): the exposure, and the
        conversion set of every goal ever counted (the current `goals` and former ones); counts stay."""

    def export(self, visitor_id: str, experiments: Iterable[tuple[str, Iterable[str]]]) -> dict[str, dict]:
        """What the experiments hold under the visitor's id, by experiment (only those holding
        something): the exposure's arm, time and covariate, and the goals converted on."""

    def exposed_visitors(self, experiment: str) -> list[str]:
        """Every visitor exposed to the experiment (to clear their assignments when it goes)."""

    def expire(self, experiment: str, goals: Iterable[str], before: float) -> int:
        """Retention: forget the visitors exposed before `before` (their exposure and conversion
        memberships; the hourly counts stay). Returns how many were forgotten."""

    def reset(self, experiment: str, goals: Iterable[str]) -> None:
        """Drop everything of one experiment (deleted or restarted from scratch), former goals' sets too."""


def hour_of(ts: float) -> int:
    return int(ts // 3600)


def _parse(field: str) -> tuple[int, str, str, str] | None:
    parts = field.split("|")
    if len(parts) != 4 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1], parts[2], parts[3]


def _keys(experiment: str, tag: str | None = None) -> dict[str, str]:
    """One experiment's keys: all of them (tag None), or one visitor shard's (sharding)."""
    prefix = f"tl:v1:xp:{{{experiment}}}:" if tag is None else f"tl:v1:xp:{{{tag}}}:{experiment}:"
    return {
        "exposed": prefix + "exposed", "hours": prefix + "hours", "flushing": prefix + "flushing", "conv": prefix + "conv:",
        "goals": prefix + "goals",
    }


def _exposure(seen: str) -> dict[str, object]:
    """An exposure as held ("arm|exposed at|covariate"), for an export."""
    arm, at, x = seen.rsplit("|", 2)
    return {"arm": arm, "exposed_at": float(at), "covariate": int(x)}


# Conversion sets written before the goal registry existed are registered once, by one SCAN of the
# experiments' keys (retention's daily purge, `expire`: never on a request's path); this key says
# it was done.
LEGACY_GOALS_REGISTERED = "tl:v1:xp:goals-registered"


def register_legacy_goals(client) -> int:
    """Add every conversion set found to its experiment's (and shard's) goal registry, once per
    Redis; returns how many sets were found (0 when it was done before)."""
    if client.exists(LEGACY_GOALS_REGISTERED):
        return 0
    found = 0
    pipe = client.pipeline(transaction=False)
    for name in client.scan_iter(match="tl:v1:xp:*:conv:*", count=1000):
        prefix, _, goal = name.partition(":conv:")
        pipe.sadd(prefix + ":goals", goal)
        found += 1
    pipe.set(LEGACY_GOALS_REGISTERED, 1)
    pipe.execute()
    return found


class RedisCounters:
    # Visitor shards (EVENT_STREAM_SHARDS): 1 keeps every key of an experiment in one slot.
    shards = 1

    def __init__(self, client) -> None:
        self.client = client
        self._expose = client.register_script(EXPOSE)
        self._convert = client.register_script(CONVERT)
        self._take = client.register_script(TAKE)
        self._drop = client.register_script(DROP_IF_BATCH)
        self._takes = 0

    def _visitor_keys(self, experiment: str, visitor_id: str) -> dict[str, str]:
        """The keys counting this visitor."""
        return _keys(experiment)

    def _all_keys(self, experiment: str) -> list[dict[str, str]]:
        """Every shard's keys of the experiment."""
        return [_keys(experiment)]

    def expose(self, experiment: str, arm: str, visitor_id: str, now: float, x: int = 0) -> bool:
        keys = self._visitor_keys(experiment, visitor_id)
        args = [visitor_id, arm, repr(float(now)), int(x), hour_of(now)]
        return bool(self._expose(keys=[keys["exposed"], keys["hours"]], args=args))

    def convert(self, experiment: str, goal: str, visitor_id: str, event_ts: float, now: float) -> bool:
        keys = self._visitor_keys(experiment, visitor_id)
        args = [visitor_id, goal, repr(float(event_ts)), hour_of(now), CLOCK_SKEW_SECONDS]
        return bool(self._convert(keys=[keys["exposed"], keys["hours"], keys["conv"] + goal, keys["goals"]], args=args))

    def exposed_arm(self, experiment: str, visitor_id: str) -> str | None:
        seen = self.client.hget(self._visitor_keys(experiment, visitor_id)["exposed"], visitor_id)
        return seen.rsplit("|", 2)[0] if seen else None

    def take(self, experiment: str) -> Batch | None:
        shards = self._all_keys(experiment)
        # One shard's batch at a time (flush_key loops), starting one shard further each call:
        # a busy shard refilled meanwhile does not keep the others waiting.
        start, self._takes = self._takes % len(shards), self._takes + 1
        for keys in shards[start:] + shards[:start]:
            flat = self._take(keys=[keys["hours"], keys["flushing"]], args=[uuid.uuid4().hex])
            raw = dict(zip(flat[::2], flat[1::2], strict=True))
            batch_id = raw.pop("_batch", None)
            if batch_id is not None:
                values = {parsed: int(value) for field, value in raw.items() if (parsed := _parse(field))}
                return Batch(batch_id, values)
        return None

    def done(self, experiment: str, batch_id: str) -> None:
        # Only the shard holding this batch id deletes its flushing key (DROP_IF_BATCH).
        for keys in self._all_keys(experiment):
            self._drop(keys=[keys["flushing"]], args=[batch_id])

    def pending(self, experiment: str) -> Mapping[tuple[int, str, str, str], int]:
        pipe = self.client.pipeline(transaction=False)
        for keys in self._all_keys(experiment):
            pipe.hgetall(keys["flushing"])
            pipe.hgetall(keys["hours"])
        totals: dict[tuple[int, str, str, str], int] = defaultdict(int)
        for raw in pipe.execute():
            for field, value in raw.items():
                if parsed := _parse(field):
                    totals[parsed] += int(value)
        return totals

    def _with_goals(self, shards: list[tuple[dict[str, str], Iterable[str]]]) -> list[tuple[dict[str, str], list[str]]]:
        """Each (shard's keys, current goals) with every goal its conversion sets may be under:
        the current ones and those its registry names (one round trip for all)."""
        pipe = self.client.pipeline(transaction=False)
        for keys, _ in shards:
            pipe.smembers(keys["goals"])
        registered = pipe.execute() if shards else []
        return [(keys, sorted({*goals, *former})) for (keys, goals), former in zip(shards, registered, strict=True)]

    def forget(self, visitor_id: str, experiments: Iterable[tuple[str, Iterable[str]]]) -> None:
        shards = self._with_goals([(self._visitor_keys(experiment, visitor_id), goals) for experiment, goals in experiments])
        pipe = self.client.pipeline(transaction=False)
        for keys, goals in shards:
            pipe.hdel(keys["exposed"], visitor_id)
            for goal in goals:
                pipe.srem(keys["conv"] + goal, visitor_id)
        pipe.execute()

    def export(self, visitor_id: str, experiments: Iterable[tuple[str, Iterable[str]]]) -> dict[str, dict]:
        named = [(experiment, self._visitor_keys(experiment, visitor_id), goals) for experiment, goals in experiments]
        shards = self._with_goals([(keys, goals) for _, keys, goals in named])
        pipe = self.client.pipeline(transaction=False)
        for keys, goals in shards:
            pipe.hget(keys["exposed"], visitor_id)
            for goal in goals:
                pipe.sismember(keys["conv"] + goal, visitor_id)
        replies = iter(pipe.execute())
        held: dict[str, dict] = {}
        for (experiment, _, _), (_, goals) in zip(named, shards, strict=True):
            seen = next(replies)
            converted = [goal for goal in goals if next(replies)]
            if seen or converted:
                held[experiment] = {**(_exposure(seen) if seen else {"arm": None}), "conversions": converted}
        return held

    def exposed_visitors(self, experiment: str) -> list[str]:
        return [visitor for keys in self._all_keys(experiment) for visitor in self.client.hkeys(keys["exposed"])]

    def expire(self, experiment: str, goals: Iterable[str], before: float) -> int:
        register_legacy_goals(self.client)
        shards = self._with_goals([(keys, list(goals)) for keys in self._all_keys(experiment)])
        return sum(self._expire_shard(keys, shard_goals, before) for keys, shard_goals in shards)

    def _expire_shard(self, keys: dict[str, str], goals: list[str], before: float) -> int:
        old = [
            visitor_id
            for visitor_id, seen in self.client.hscan_iter(keys["exposed"], count=1000)
            if float(seen.rsplit("|", 2)[1]) < before
        ]
        for start in range(0, len(old), 1000):
            chunk = old[start : start + 1000]
            pipe = self.client.pipeline(transaction=False)
            pipe.hdel(keys["exposed"], *chunk)
            for goal in goals:
                pipe.srem(keys["conv"] + goal, *chunk)
            pipe.execute()
        return len(old)

    def reset(self, experiment: str, goals: Iterable[str]) -> None:
        goals = list(goals)
        for keys, shard_goals in self._with_goals([(keys, goals) for keys in self._all_keys(experiment)]):
            # One shard's keys share a slot: one DEL each.
            self.client.delete(keys["exposed"], keys["hours"], keys["flushing"], keys["goals"], *(keys["conv"] + g for g in shard_goals))


class ShardedRedisCounters(RedisCounters):
    """RedisCounters split by visitor shard (EVENT_STREAM_SHARDS > 1): see the module docstring."""

    def __init__(self, client, shards: int) -> None:
        super().__init__(client)
        self.shards = shards

    def _visitor_keys(self, experiment: str, visitor_id: str) -> dict[str, str]:
        return _keys(experiment, visitor_tag(visitor_id, self.shards))

    def _all_keys(self, experiment: str) -> list[dict[str, str]]:
        return [_keys(experiment, tag) for tag in shard_tags(self.shards)]


class MemoryCounters:
    """The same contract in process memory, for the memory profile store (tests, `make demo`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exposed: dict[str, dict[str, tuple[str, float, int]]] = defaultdict(dict)
        self._converted: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._hours: dict[str, dict[tuple[int, str, str, str], int]] = defaultdict(lambda: defaultdict(int))
        self._flushing: dict[str, Batch] = {}

    def expose(self, experiment: str, arm: str, visitor_id: str, now: float, x: int = 0) -> bool:
        with self._lock:
            if visitor_id in self._exposed[experiment]:
                return False
            self._exposed[experiment][visitor_id] = (arm, now, int(x))
            hours, hour = self._hours[experiment], hour_of(now)
            for stat, value in zip(EXPOSURE_STATS, (1, int(x), int(x) * int(x)), strict=True):
                hours[(hour, arm, "", stat)] += value
            return True

    def convert(self, experiment: str, goal: str, visitor_id: str, event_ts: float, now: float) -> bool:
        with self._lock:
            seen = self._exposed[experiment].get(visitor_id)
            if seen is None or event_ts < seen[1] - CLOCK_SKEW_SECONDS:
                return False
            converted = self._converted[(experiment, goal)]
            if visitor_id in converted:
                return False
            converted.add(visitor_id)
            arm, _, x = seen
            hours, hour = self._hours[experiment], hour_of(now)
            hours[(hour, arm, goal, "c")] += 1
            hours[(hour, arm, goal, "sxy")] += x
            return True

    def exposed_arm(self, experiment: str, visitor_id: str) -> str | None:
        seen = self._exposed[experiment].get(visitor_id)
        return seen[0] if seen else None

    def take(self, experiment: str) -> Batch | None:
        with self._lock:
            if experiment not in self._flushing:
                hours = self._hours.pop(experiment, None)
                if not hours:
                    return None
                self._flushing[experiment] = Batch(uuid.uuid4().hex, dict(hours))
            return self._flushing[experiment]

    def done(self, experiment: str, batch_id: str) -> None:
        with self._lock:
            if (batch := self._flushing.get(experiment)) is not None and batch.batch_id == batch_id:
                del self._flushing[experiment]

    def pending(self, experiment: str) -> Mapping[tuple[int, str, str, str], int]:
        with self._lock:
            totals: dict[tuple[int, str, str, str], int] = defaultdict(int)
            sources = [self._hours.get(experiment, {})]
            if experiment in self._flushing:
                sources.append(self._flushing[experiment].values)
            for source in sources:
                for field, value in source.items():
                    totals[field] += value
            return totals

    def _goal_sets(self, experiment: str) -> list[set[str]]:
        """Every goal's conversion set of the experiment, current or former goal (under the lock)."""
        return [visitors for (key, _), visitors in self._converted.items() if key == experiment]

    def forget(self, visitor_id: str, experiments: Iterable[tuple[str, Iterable[str]]]) -> None:
        with self._lock:
            for experiment, _goals in experiments:
                self._exposed[experiment].pop(visitor_id, None)
                for visitors in self._goal_sets(experiment):
                    visitors.discard(visitor_id)

    def export(self, visitor_id: str, experiments: Iterable[tuple[str, Iterable[str]]]) -> dict[str, dict]:
        held: dict[str, dict] = {}
        with self._lock:
            for experiment, _goals in experiments:
                seen = self._exposed.get(experiment, {}).get(visitor_id)
                converted = sorted(goal for (key, goal), visitors in self._converted.items() if key == experiment and visitor_id in visitors)
                if seen or converted:
                    exposure = {"arm": seen[0], "exposed_at": seen[1], "covariate": seen[2]} if seen else {"arm": None}
                    held[experiment] = {**exposure, "conversions": converted}
        return held

    def exposed_visitors(self, experiment: str) -> list[str]:
        with self._lock:
            return list(self._exposed.get(experiment, {}))

    def expire(self, experiment: str, goals: Iterable[str], before: float) -> int:
        with self._lock:
            exposed = self._exposed.get(experiment, {})
            old = [visitor_id for visitor_id, (_, at, _) in exposed.items() if at < before]
            goal_sets = self._goal_sets(experiment)
            for visitor_id in old:
                del exposed[visitor_id]
                for visitors in goal_sets:
                    visitors.discard(visitor_id)
            return len(old)

    def reset(self, experiment: str, goals: Iterable[str]) -> None:
        with self._lock:
            self._exposed.pop(experiment, None)
            self._hours.pop(experiment, None)
            self._flushing.pop(experiment, None)
            for pair in [pair for pair in self._converted if pair[0] == experiment]:
                del self._converted[pair]


class ExposureMemo:
    """Which (key, visitor) pairs this process has already seen exposed, per counters backend, so
    a page's later blocks and the visitor's later pages skip the backend's uniqueness check (one
    Redis call each). Bounded; only ever a shortcut: the backend stays the source of truth."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._seen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _of(self, backend: Counters) -> OrderedDict:
        seen = self._seen.get(backend)
        if seen is None:
            seen = self._seen[backend] = OrderedDict()
        return seen

    def seen(self, backend: Counters, key: str, visitor_id: str) -> bool:
        with self._lock:
            return (key, visitor_id) in self._of(backend)

    def remember(self, backend: Counters, key: str, visitor_id: str) -> None:
        with self._lock:
            seen = self._of(backend)
            seen[(key, visitor_id)] = True
            while len(seen) > self.size:
                seen.popitem(last=False)

    def forget(self, backend: Counters, visitor_id: str | None = None, key: str | None = None) -> None:
        """Drop a visitor's pairs (erasure) or a key's pairs (a deleted experiment)."""
        with self._lock:
            seen = self._of(backend)
            for pair in [p for p in seen if p[1] == visitor_id or p[0] == key]:
                del seen[pair]


exposure_memo = ExposureMemo()


# One counters object per profile store object: a test's fresh memory store gets fresh counters.
_backends: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_backends_lock = threading.Lock()


def counters() -> Counters:
    """The counters beside the configured profile store: Redis with a Redis store, else in memory."""
    store = conf.get_profile_store()
    with _backends_lock:
        backend = _backends.get(store)
        if backend is None:
            client = getattr(store, "client", None)
            shards = int(getattr(store, "shards", 1))
            if client is None:
                backend = MemoryCounters()
            else:
                backend = RedisCounters(client) if shards <= 1 else ShardedRedisCounters(client, shards)
            _backends[store] = backend
    return backend


# -- Flush ----------------------------------------------------------------------------------------


def flush(experiment_keys: Iterable[str] | None = None, backend: Counters | None = None) -> int:
    """Move the counted exposures and conversions of these experiments (default: all but drafts)
    into `ExperimentCount` rows; returns how many rows were written."""
    backend = backend or counters()
    if experiment_keys is None:
        experiment_keys = Experiment.objects.exclude(status=Experiment.Status.DRAFT).values_list("key", flat=True)
    ids = dict(Experiment.objects.filter(key__in=list(experiment_keys)).values_list("key", "pk"))
    return sum(flush_key(key, backend, partial(_add, pk)) for key, pk in ids.items())


# add_row(hour, arm or group, goal, stats): adds one row's counters inside the flush's transaction.
AddRow = Callable[[int, str, str, Mapping[str, int]], None]


def flush_key(key: str, backend: Counters, add_row: AddRow) -> int:
    """Take one key's pending batch, apply it, then forget it: a crash between the commit and the
    forget is retried and skipped (nothing lost, nothing counted twice). Rows written."""
    written = 0
    for _shard in range(getattr(backend, "shards", 1)):  # each visitor shard's batch on its own
        batch = backend.take(key)
        if batch is None:
            break
        written += apply_rows(batch, add_row)
        backend.done(key, batch.batch_id)
    return written


def apply_rows(batch: Batch, add_row: AddRow) -> int:
    """Add a batch to the rows in one transaction; a batch already applied is skipped (0 rows)."""
    rows = rows_of(batch.values)
    try:
        with transaction.atomic():
            FlushBatch.objects.create(batch=batch.batch_id)
            for (hour, arm, goal), stats in rows.items():
                add_row(hour, arm, goal, stats)
    except IntegrityError:
        if FlushBatch.objects.filter(batch=batch.batch_id).exists():
            return 0  # applied before a crash, or by another worker
        raise
    return len(rows)


def apply_batch(experiment_id: int, batch: Batch) -> int:
    """An experiment's batch into its `ExperimentCount` rows (see `apply_rows`)."""
    return apply_rows(batch, partial(_add, experiment_id))


def rows_of(values: Mapping[tuple[int, str, str, str], int]) -> dict[tuple[int, str, str], dict[str, int]]:
    """Counter fields grouped into (hour, arm, goal) rows."""
    rows: dict[tuple[int, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (hour, arm, goal, stat), value in values.items():
        rows[(hour, arm, goal)][stat] += value
    return rows


def _add(experiment_id: int, hour: int, arm: str, goal: str, stats: Mapping[str, int]) -> None:
    moment = datetime.fromtimestamp(hour * 3600, tz=UTC)
    increments = {
        "exposures": stats.get("n", 0),
        "sum_x": stats.get("sx", 0),
        "sum_x2": stats.get("sx2", 0),
        "conversions": stats.get("c", 0),
        "sum_xy": stats.get("sxy", 0),
    }
    where = {"experiment_id": experiment_id, "arm": arm, "goal": goal, "hour": moment}
    updated = ExperimentCount.objects.filter(**where).update(**{f: F(f) + v for f, v in increments.items()})
    if not updated:
        # Two flushes creating the same row at once: one fails on the unique constraint, its
        # transaction rolls back and its batch stays in Redis for the next flush.
        ExperimentCount.objects.create(**where, **increments)


class Every:
    """A turn-based clock for the worker: `due()` is True at most once every `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = float("-inf")

    def due(self) -> bool:
        moment = time.monotonic()
        if moment - self._last < self.seconds:
            return False
        self._last = moment
        return True

    def reset(self) -> None:
        self._last = float("-inf")


FLUSH_EVERY_SECONDS = 10.0
flush_clock = Every(FLUSH_EVERY_SECONDS)


def flush_due() -> int:
    """For the stream worker's loop: flush at most every FLUSH_EVERY_SECONDS; returns rows written.
    A failure is logged and retried on a later turn (the counts stay in Redis meanwhile)."""
    if not flush_clock.due():
        return 0
    try:
        written = flush()
    except Exception as error:
        logger.warning("experiment counts not flushed yet: %s", error)
        return 0
    try:
        # Bandits reallocate on the same turn, from the counts just flushed (each at its cadence).
        from .bandit import reallocate_due

        reallocate_due()
    except Exception as error:
        logger.warning("bandit weights not reallocated yet: %s", error)
    return written
