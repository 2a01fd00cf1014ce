"""Insights counters: counted by the worker per stream entry, flushed exactly once into rows.

Nothing here runs on the request path: the events API appends a batch to the stream as before,
and the worker, after persisting an entry's events, counts it here. Redis keys share the hash tag
`{ins}` (one slot, so each Lua script touches one slot on Redis Cluster):

    tl:v1:{ins}:hours         hash  "<hour>|<page>|<block>|<variant>|<segment>|<device>|<country>|<stat>"
                                    and "T|<hour>|e" (events) / "T|<hour>|d" (dead letters) -> integer
    tl:v1:{ins}:flushing      the hours hash being flushed, with its batch id in field "_batch"
    tl:v1:{ins}:done:<entry>  an entry already counted (a day): a redelivered entry counts once
    tl:v1:{ins}:u:<hour>|<cell>|<dims>  HyperLogLog of the cell's viewers that hour (until 2 h after)
    tl:v1:{ins}:seen:<digest> hash  cell -> when the visitor last saw it, for attribution; it
                                    expires after the attribution window (the digest names nobody)

With EVENT_STREAM_SHARDS = N > 1 (issue 19) the per-visitor counters are split by visitor shard,
`tl:v1:ins:{<shard tag>}:...` (tailored.sharding), the shard of the stream the entry came from:
one cluster node does not take every entry's count. The shards hold disjoint visitors, so the
unique-viewer counts of the shards add up; each shard's hours hash is flushed as its own batch.

Stats: i impressions, u unique viewers (the HyperLogLog grew), c clicks (page views in which the
block was clicked), v view time in ms, ca any-touch and cl last-touch conversions. Segment "" is
every visitor; an event also counts under each segment the visitor is in now (evaluated on their
profile with their last device and country, as live segment counts are).

Attribution: a goal event (INSIGHTS_GOALS) counts one any-touch conversion for every cell the
visitor saw within INSIGHTS_ATTRIBUTION_MINUTES before it, and one last-touch conversion for the
cell seen last. Flush: the experiments' pattern (rename, batch id, one transaction, then delete).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from tailored import conf, faults
from tailored.core.segments import matching_segments
from tailored.core.types import Event
from tailored.experiments.counting import DROP_IF_BATCH as DROP
from tailored.experiments.counting import TAKE, Every
from tailored.experiments.models import FlushBatch
from tailored.models import InsightDay, InsightHour, TrafficHour
from tailored.sharding import shard_of, shard_tag

logger = logging.getLogger(__name__)

PREFIX = "tl:v1:{ins}:"
HOURS_KEY, FLUSHING_KEY = PREFIX + "hours", PREFIX + "flushing"


def shard_prefix(shard: int, shards: int) -> str:
    """The prefix of one visitor shard's counters (PREFIX itself with one shard)."""
    return PREFIX if shards <= 1 else f"tl:v1:ins:{{{shard_tag(shard, shards)}}}:"


def shard_prefixes() -> list[str]:
    shards = int(conf.get("EVENT_STREAM_SHARDS"))
    return [shard_prefix(shard, shards) for shard in range(max(shards, 1))]


def visitor_prefix(visitor_id: str) -> str:
    shards = int(conf.get("EVENT_STREAM_SHARDS"))
    return shard_prefix(shard_of(visitor_id, shards), shards)
DONE_SECONDS = 86400  # longer than an entry can wait unacknowledged while any worker runs
CLOCK_SKEW_SECONDS = 120.0
STATS = {"i": "impressions", "u": "viewers", "c": "clicks", "v": "view_ms", "ca": "conversions", "cl": "last_touch_conversions"}

COUNT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local counts = cjson.decode(ARGV[3])
local visitor = ARGV[4]
for name, amount in pairs(counts[1]) do redis.call('HINCRBY', KEYS[2], name, amount) end
for _, viewer in ipairs(counts[2]) do
    if redis.call('PFADD', viewer[1], visitor) == 1 then redis.call('HINCRBY', KEYS[2], viewer[2], 1) end
    redis.call('EXPIREAT', viewer[1], viewer[3])
end
local seen = false
for cell, at in pairs(counts[3]) do redis.call('HSET', KEYS[3], cell, at); seen = true end
if seen then redis.call('EXPIRE', KEYS[3], ARGV[2]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class Dims:
    """Where a visitor's events count: their device class, country and segments."""

    device: str = ""
    country: str = ""
    segments: tuple[str, ...] = ()

    def rows(self) -> list[str]:
        return [f"{segment}|{self.device}|{self.country}" for segment in ("", *self.segments)]


@dataclass
class EntryCounts:
    """What one stream entry adds: counter increments, viewers to add to HyperLogLogs and the
    cells the visitor saw (for attribution of their later goals)."""

    increments: Counter = field(default_factory=Counter)
    viewers: dict[str, tuple[str, int]] = field(default_factory=dict)  # hll key -> (field, expire at)
    seen: dict[str, float] = field(default_factory=dict)


def _clean(value: Any) -> str:
    # "|" separates the counter field's parts; keys came through the schema (at most 64 characters).
    return str(value or "").replace("|", "/")[:64]


def cell_of(attrs: Mapping[str, Any]) -> str:
    """"<page>|<block>|<variant>" of an event's decision; an experiment block's variant is its arm."""
    page = attrs.get("page") if isinstance(attrs.get("page"), int) else 0
    return f"{page}|{_clean(attrs.get('block'))}|{_clean(attrs.get('variant') or attrs.get('arm'))}"


def digest(visitor_id: str) -> str:
    return hashlib.sha256(f"tailored-insights:{visitor_id}".encode()).hexdigest()[:32]


def counts_of(
    events: Iterable[Event], dims: Dims, seen: dict[str, float], goals: frozenset[str], window: float, prefix: str = PREFIX,
) -> EntryCounts:
    """An entry's counts, its events in time order. `seen` (cell -> last seen) is the visitor's
    attribution state before the entry; impressions in the entry update it as they go. `prefix`:
    the visitor's shard's (the viewers' HyperLogLogs share the COUNT script's slot)."""
    counts, rows = EntryCounts(), dims.rows()
    for event in sorted(events, key=lambda e: e.ts):
        hour = int(event.ts // 3600)
        counts.increments[f"T|{hour}|e"] += 1
        attrs = event.attrs
        decided = bool(attrs.get("block")) and event.type in ("impression", "click")
        if decided:
            cell = cell_of(attrs)
            stat = "i" if event.type == "impression" else "c"
            for row in rows:
                counts.increments[f"{hour}|{cell}|{row}|{stat}"] += 1
                if stat == "i":
                    counts.increments[f"{hour}|{cell}|{row}|v"] += int(float(attrs.get("seconds") or 0) * 1000)
                    counts.viewers[f"{prefix}u:{hour}|{cell}|{row}"] = (f"{hour}|{cell}|{row}|u", (hour + 3) * 3600)
            if stat == "i" and event.ts >= seen.get(cell, 0):
                seen[cell] = counts.seen[cell] = event.ts
        if event.type in goals:
            _attribute(counts, event, rows, seen, window)
    return counts


def _attribute(counts: EntryCounts, event: Event, rows: list[str], seen: Mapping[str, float], window: float) -> None:
    touched = {cell: at for cell, at in seen.items() if event.ts - window <= at <= event.ts + CLOCK_SKEW_SECONDS}
    if not touched:
        return
    hour, last = int(event.ts // 3600), max(touched, key=touched.__getitem__)
    for cell in touched:
        for row in rows:
            counts.increments[f"{hour}|{cell}|{row}|ca"] += 1
            if cell == last:
                counts.increments[f"{hour}|{cell}|{row}|cl"] += 1


def visitor_dims(visitor_ids: Sequence[str], now: float) -> dict[str, Dims]:
    """Each visitor's device, country and segments now, from their profile (one batched read)."""
    if not visitor_ids:
        return {}
    # Imported here: both read Wagtail's models (reference index, segments) at import time.
    from tailored.segment_insights import last_known_context
    from tailored.segments import segment_cache

    segment_set, windows = segment_cache.current()
    profiles = conf.get_profile_store().get_many(visitor_ids, now, windows)
    site_time = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(settings.TIME_ZONE))
    dims = {}
    for visitor_id, profile in profiles.items():
        context = last_known_context(profile, site_time)
        segments = matching_segments(segment_set.definitions, profile, context, now)
        dims[visitor_id] = Dims(_clean(profile.last_device)[:16], _clean(profile.last_country)[:2], tuple(sorted(segments)))
    return dims


def count_entries(client: Any, entries: Sequence[Any], dead_letters: int = 0, now: float | None = None) -> int:
    """Count the stored entries (the worker's DecodedEntry: entry_id, visitor_id, events) into the
    hourly counters, each entry at most once however often it is delivered. Returns how many
    entries were counted now (0 for repeats)."""
    now = time.time() if now is None else now
    if not conf.get("INSIGHTS_ENABLED") or not (entries or dead_letters):
        return 0
    goals = frozenset(conf.get("INSIGHTS_GOALS"))
    window = float(conf.get("INSIGHTS_ATTRIBUTION_MINUTES")) * 60
    relevant = {e.visitor_id for e in entries if any(_counts_for(event, goals) for event in e.events)}
    dims = visitor_dims(sorted(relevant), now)
    converting = {e.visitor_id for e in entries if any(event.type in goals for event in e.events)}
    seen = _seen_before(client, sorted(converting))
    script = client.register_script(COUNT)
    pipe = client.pipeline(transaction=False)
    if dead_letters:
        pipe.hincrby(shard_prefixes()[0] + "hours", f"T|{int(now // 3600)}|d", dead_letters)
    for entry in entries:
        state = seen.setdefault(entry.visitor_id, {})
        # The visitor's shard, which is also the stream shard the entry came from: its entry ids
        # are unique there, so the "done" marks of two shards never meet.
        prefix = visitor_prefix(entry.visitor_id)
        counts = counts_of(entry.events, dims.get(entry.visitor_id, Dims()), state, goals, window, prefix)
        keys = [f"{prefix}done:{entry.entry_id}", prefix + "hours", f"{prefix}seen:{digest(entry.visitor_id)}"]
        script(keys=keys, args=_arguments(counts, int(window + CLOCK_SKEW_SECONDS), entry.visitor_id), client=pipe)
    replies = pipe.execute()
    return sum(1 for reply in replies[-len(entries):] if reply == 1) if entries else 0


def _counts_for(event: Event, goals: frozenset[str]) -> bool:
    return event.type in goals or (event.type in ("impression", "click") and bool(event.attrs.get("block")))


def _seen_before(client: Any, visitor_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """The cells these visitors saw before this batch (one pipelined read), for attribution."""
    if not visitor_ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for visitor_id in visitor_ids:
        pipe.hgetall(f"{visitor_prefix(visitor_id)}seen:{digest(visitor_id)}")
    return {v: {cell: float(at) for cell, at in raw.items()} for v, raw in zip(visitor_ids, pipe.execute(), strict=True)}


def _arguments(counts: EntryCounts, seen_ttl: int, visitor_id: str) -> list[Any]:
    # One JSON argument rather than one per field: redis-py encodes every argument on its own,
    # and a batch's entries carry thousands of them (issue 17's ingest overhead). An empty table
    # decodes as {} in Lua's cjson, which `pairs` and `ipairs` both walk as empty.
    viewers = [[key, name, expire_at] for key, (name, expire_at) in counts.viewers.items()]
    seen = {cell: repr(at) for cell, at in counts.seen.items()}
    return [DONE_SECONDS, seen_ttl, json.dumps([dict(counts.increments), viewers, seen], separators=(",", ":")), visitor_id]


# -- Flush ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taken:
    batch_id: str
    values: dict[str, int]


def take(client: Any, prefix: str = PREFIX) -> Taken | None:
    """The counts of one shard (`prefix`) not yet in the database (an unfinished batch first), or None."""
    import uuid

    flat = client.register_script(TAKE)(keys=[prefix + "hours", prefix + "flushing"], args=[uuid.uuid4().hex])
    raw = dict(zip(flat[::2], flat[1::2], strict=True))
    batch_id = raw.pop("_batch", None)
    return None if batch_id is None else Taken(batch_id, {name: int(value) for name, value in raw.items()})


def flush(client: Any) -> int:
    """Move the counters into rows exactly once: applied with the batch id in one transaction,
    then forgotten in Redis. A crash between the two leaves the batch, which the next flush
    finds recorded and only forgets. Returns the rows written."""
    started = time.perf_counter()
    written, taken_any = 0, False
    for prefix in shard_prefixes():  # each shard's batch on its own (its own batch id)
        taken = take(client, prefix)
        if taken is None:
            continue
        taken_any = True
        written += apply(taken.batch_id, taken.values)
        # The crash test kills the worker here: committed, not yet forgotten in Redis.
        faults.crash_point("insights-flush-after-commit")
        client.register_script(DROP)(keys=[prefix + "flushing"], args=[taken.batch_id])
    if not taken_any:
        return 0
    from .metrics import note_flush  # the worker's flush time, for /metrics

    note_flush(client, time.perf_counter() - started, written)
    return written


def apply(batch_id: str, values: Mapping[str, int]) -> int:
    """Add counter values to the hourly, daily and traffic rows in one transaction; 0 when this
    batch was applied before."""
    cells, traffic = group(values)
    try:
        with transaction.atomic():
            FlushBatch.objects.create(batch=f"ins-{batch_id}"[:64])
            for (hour, *cell), stats in cells.items():
                add_counts(hour, tuple(cell), stats)
            for hour, stats in traffic.items():
                _add(TrafficHour, {"hour": _moment(hour)}, stats)
    except IntegrityError:
        if FlushBatch.objects.filter(batch=f"ins-{batch_id}"[:64]).exists():
            return 0
        raise
    return len(cells) + len(traffic)


def group(values: Mapping[str, int]) -> tuple[dict[tuple, dict[str, int]], dict[int, dict[str, int]]]:
    """Counter fields into rows: (hour, page, block, variant, segment, device, country) -> stats,
    and hour -> {events, dead_letters}. Unreadable fields are skipped."""
    cells: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    traffic: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, value in values.items():
        parts = name.split("|")
        if len(parts) == 3 and parts[0] == "T" and parts[1].isdigit():
            traffic[int(parts[1])]["events" if parts[2] == "e" else "dead_letters"] += value
        elif len(parts) == 8 and parts[0].isdigit() and parts[1].isdigit() and parts[7] in STATS:
            hour, page, block, variant, segment, device, country, stat = parts
            cells[(int(hour), int(page), block, variant, segment, device, country)][STATS[stat]] += value
    return cells, traffic


def add_counts(hour: int, cell: tuple, stats: Mapping[str, int]) -> None:
    """One cell's counts into its hourly and its daily row (inside the flush's transaction)."""
    page, block, variant, segment, device, country = cell
    where = {"page_id": page, "block": block, "variant": variant, "segment": segment, "device": device, "country": country}
    moment = _moment(hour)
    _add(InsightHour, {**where, "hour": moment}, stats)
    _add(InsightDay, {**where, "day": moment.date()}, stats)


def _add(model: Any, where: Mapping[str, Any], stats: Mapping[str, int]) -> None:
    if not model.objects.filter(**where).update(**{name: F(name) + value for name, value in stats.items()}):
        # Two flushes creating one row at once: one fails on the unique constraint, its
        # transaction rolls back and its batch stays in Redis for the next flush.
        model.objects.create(**where, **stats)


def _moment(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, tz=UTC)


flush_clock = Every(10.0)


def flush_due(client: Any) -> int:
    """For the worker's loop: flush at most every 10 s; a failure is logged and retried later."""
    if not flush_clock.due():
        return 0
    try:
        return flush(client)
    except Exception as error:
        logger.warning("insight counts not flushed yet: %s", error)
        return 0


def expired(now: datetime) -> dict[str, tuple[Any, int]]:
    """Retention (`tailored_purge`): hourly rows and traffic after INSIGHTS_HOURLY_DAYS; daily
    rows, score days and alerts after INSIGHTS_DAILY_DAYS. Label -> (queryset, days)."""
    from tailored.models import Alert, ScoreDay

    hourly_days, daily_days = int(conf.get("INSIGHTS_HOURLY_DAYS")), int(conf.get("INSIGHTS_DAILY_DAYS"))
    hourly, daily = now - timedelta(days=hourly_days), now - timedelta(days=daily_days)
    return {
        "insight hours": (InsightHour.objects.filter(hour__lt=hourly), hourly_days),
        "traffic hours": (TrafficHour.objects.filter(hour__lt=hourly), hourly_days),
        "insight days": (InsightDay.objects.filter(day__lt=daily.date()), daily_days),
        "score days": (ScoreDay.objects.filter(day__lt=daily.date()), daily_days),
        "alerts": (Alert.objects.filter(created_at__lt=daily), daily_days),
    }
