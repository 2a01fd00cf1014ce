"""Redis profile store. Every key of one visitor shares the hash tag `{visitor}`, so the same
code runs on Redis Cluster. A request reads a profile in one round trip; a batch of events costs
one on a single Redis (tailored.profiles.redis_writes: rate limit, dedup, the session its
last-seen time picks, every write and the stream append in one script) and three on a cluster.

Keys (all expire after the retention period, renewed on every write):
    tl:v1:{vid}:p       hash    scalars (page_views, sessions, cart_updated_at, purchases, ltv, ...)
    tl:v1:{vid}:seen    zset    "first"/"last" scored by epoch seconds (ZADD LT/GT keeps min/max)
    tl:v1:{vid}:w       hash    time buckets: "<counter>|h" -> "<epoch hour>:<n> ..." (48 h), "<counter>|d" -> days (90 d);
                                "~sums": the window sums READ_LUA keeps between reads (see there)
    tl:v1:{vid}:t       hash    totals "e:<event type>" and "c:<category>" (page views)
    tl:v1:{vid}:cart    hash    product id -> quantity (lines at 0 or below are ignored and pruned)
    tl:v1:{vid}:items   list    "<item>@<ts>" viewed items, newest first, capped
    tl:v1:{vid}:search  list    recent search terms, newest first, capped
    tl:v1:{vid}:sess    list    session start times, newest first, capped
    tl:v1:{vid}:dwell   hash    "<category>|s" seconds and "<category>|n" count
    tl:v1:{vid}:votes   hash    product id -> up | down
    tl:v1:{vid}:ids     hash    client event id -> first seen (the dedup window; expires with it)
    tl:v1:{vid}:m       hash    model outputs (persona, score:<name>), onboarding preferences, and
                                experiment arms x:<experiment> (read with the profile: no extra trip)
    tl:v1:{vid}:traits  string  the visitor's declared CRM traits as one JSON object (issue 20): a
                                copy of their VisitorTraits row, read with the profile
    tl:v1:recent        zset    visitor -> last event time, the last 7 days (live segment counts)
    tl:v1:seg:{slug}:<day>  HyperLogLog of the visitors who matched the segment that day
    With EVENT_STREAM_SHARDS = N > 1 (issue 19, tailored.sharding) these two and the stream are
    split by visitor shard: tl:v1:recent:{<tag>} and tl:v1:seg:{<tag>}:<slug>:<day>, read over
    every shard (the shards hold disjoint visitors, so their HyperLogLog counts add up).
    tl:v1:{vid}:rate:<minute>   string  events accepted this minute (rate limit)

Retention (RETENTION_DAYS): profile keys expire that long after the visitor's last event; stream
entries, segment counts and tombstones (tailored.events.stream) are kept as long at most;
`purge` enforces it for data written under a longer setting.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import redis
from redis.cluster import RedisCluster

from tailored import json_out, redis_guard
from tailored.core.counters import (
    RECENT_ITEMS,
    RECENT_SEARCHES,
    RECENT_SESSIONS,
    delta_for,
    session_options,
)
from tailored.core.types import Event, LazyTuple, Profile, Snapshot, Window, hour_bucket
from tailored.core.windows import HOURLY_HOURS, MAX_WINDOW_HOURS
from tailored.events.stream import (
    CART_WATCH_KEY,
    DEAD_LETTER_KEY,
    ERASED_KEY,
    appended_at,
    encode_batch,
    erased_digest,
    min_id,
    stream_key,
    stream_keys,
    visitor_stream,
)
from tailored.sharding import shard_of, shard_tag
from tailored.visit_memory import parse_kept

from .base import RecordResult, profile_to_json
from .redis_writes import BUCKETS_LUA, WRITE_LUA, BatchWrites

KEY_PREFIX = "tl:v1:"
SUMS_FIELD = "~sums"  # READ_LUA's kept window sums, in the `w` hash beside the series (not a series)
PROFILE_KEYS = ("p", "seen", "w", "t", "cart", "items", "search", "sess", "dwell", "votes", "ids", "m", "traits")
RECENT_KEY = "tl:v1:recent"  # zset: visitor -> last event time (for live segment counts)
RECENT_KEEP_SECONDS = 7 * 86400
RATE_KEY_SECONDS = 120  # a minute's rate counter outlives its minute, then goes
# Export and erasure read a stream to its end, SCAN_PAGE entries per call, so every entry it can
# hold is covered: the dead letters keep DEAD_LETTER_MAXLEN (trimmed approximately: a little more),
# the event stream STREAM_MAXLEN shared among its shards (it holds only what no worker has stored
# yet). Each call stays short (a few milliseconds: Redis serves everyone else in between and no
# call nears the socket timeout), but a whole scan does not: 100,000 dead letters take 0.3 to 1 s,
# more than a page's REDIS_REQUEST_BUDGET_SECONDS. So a scan runs under an allowance of its own,
# SCAN_SECONDS, and does not spend the request's budget; a hung Redis still fails its first page
# at the socket timeout. Past the allowance the export or erasure fails (503: retry) rather than
# leave anything out.
SCAN_PAGE = 1000
SCAN_SECONDS = 10.0
# Except that an erasure stops reading the event stream after this long (a backlog of up to
# STREAM_MAXLEN entries while the workers are down): its tombstone makes a worker drop every entry
# of the visitor it did not reach. Dead letters have no such guard and are always read to the end.
ERASE_STREAM_SECONDS = 2.0
logger = logging.getLogger(__name__)
INT_FIELDS = ("page_views", "sessions", "session_content_views", "purchases", "scroll_sum", "scroll_n")
FLOAT_FIELDS = ("session_start", "cart_updated_at", "ltv", "last_purchase_at")

# The whole profile in one call: a request pays redis-py's per-command cost once, not twelve
# times. Windows are summed server-side so the reply carries a few integers, not every bucket.
# KEYS: p seen t cart items search sess dwell votes m w traits. ARGV: current hour, hourly hours, list
# caps (items, searches, sessions), then the windows as `_windows_plan` lays them out once per
# segment set: ARGV[6] the plan's digest (empty: keep no sums), ARGV[7] the number F of distinct
# bucket fields, ARGV[8..7+F] the fields ("<counter>|h" hourly, "<counter>|d" daily, each holding "bucket:count"
# pairs), then per field its number of windows and their spans, ascending. The counts come back
# field by field in that order. All fields come in one HMGET and each field's text is read once:
# a bucket is added to the field's windows from the widest down, stopping at the first too narrow
# for it. Nothing is parsed into tables but one field's spans (this script is on every request's
# path: ARGV strings are coerced where used). Mirrors tailored.core.windows (the reference).
#
# Summing every pair was most of the script's time (110 of 165 us for an active visitor), so a
# page request's read (RedisProfileStore.get_for_request, the one reader whose windows are the
# same every time) keeps the sums between reads in the hash's SUMS_FIELD: "<digest>:<hour>
# <offset per field> <sum per window>", where a field's offset is where its last pair started and the sums are of the
# pairs before it. Writes only ever change a series' last pair or append after it (BUCKETS_LUA),
# except when they rewrite a series, and then they delete the kept sums. So a read in the same
# hour with the same plan adds to the kept sums only the pairs from each offset on (usually one:
# the visitor's current hour), and keeps the new offsets when they moved. A new hour or another
# plan sums every pair again, once. The sums are kept only when they are no longer than the
# longest series read: where summing is cheap they would cost memory (a hash of short values is a
# compact listpack, and one longer value turns it into a table), and where a series is already
# that long the hash is a table anyway. So a read never creates a key, nor changes a hash's
# encoding; the HSET is a pcall (a Redis out of memory still answers reads).
READ_LUA = """
local now_hour = tonumber(ARGV[1])
local today = math.floor(now_hour / 24)
local nfields = tonumber(ARGV[7])
local counts, spans, kept_sums, offsets = {}, {}, {}, {}
local raws = nfields > 0 and redis.call('HMGET', KEYS[11], '~sums', unpack(ARGV, 8, 7 + nfields)) or {}
local find, byte, sub = string.find, string.byte, string.sub
local keeping = ARGV[6] ~= ''
local head = ARGV[6] .. ':' .. ARGV[1] .. ' '
local kept = raws[1]
local known = keeping and kept and sub(kept, 1, #head) == head
if known then
  local i = 0
  for token in string.gmatch(sub(kept, #head + 1), '%S+') do
    i = i + 1
    if i <= nfields then offsets[i] = token + 0 else kept_sums[i - nfields] = token + 0 end
  end
end
local pos, slot, moved, longest = 8 + nfields, 0, not known, 0
local new_offsets, new_sums = {}, {}
for i = 1, nfields do
  local nspans = ARGV[pos] + 0
  local raw, start = raws[i + 1], known and offsets[i] or 0
  -- An offset must still start a pair (after a space) of a series at least that long.
  if start > 0 and (not raw or start > #raw or (start > 1 and byte(raw, start - 1) ~= 32)) then start = 0 end
  for w = 1, nspans do spans[w] = ARGV[pos + w] + 0; counts[slot + w] = start > 0 and kept_sums[slot + w] or 0 end
  pos = pos + nspans + 1
  local offset = 0
  if raw then
    if #raw > longest then longest = #raw end
    local newest = byte(ARGV[7 + i], -1) == 104 and now_hour or today  -- 104: 'h'
    local widest, len, init = spans[nspans], #raw, start > 0 and start or 1
    while true do
      local first, last, bucket, n = find(raw, '(%d+):(%d+)', init)
      if not first then break end
      if last == len then  -- the series' last pair: kept sums stop before it
        offset = first
        for w = 1, nspans do new_sums[slot + w] = counts[slot + w] end
      end
      local age = newest - bucket
      if age >= 0 and age < widest then
        n = n + 0
        for w = nspans, 1, -1 do
          if age < spans[w] then counts[slot + w] = counts[slot + w] + n else break end
        end
      end
      init = last + 1
    end
  end
  if offset == 0 then for w = 1, nspans do new_sums[slot + w] = 0 end end
  new_offsets[i] = offset
  if offset ~= offsets[i] then moved = true end  -- (no kept offsets: moved already)
  slot = slot + nspans
end
if keeping and moved and longest > 0 then
  local value = head .. table.concat(new_offsets, ' ') .. ' ' .. table.concat(new_sums, ' ')
  if #value <= longest then redis.pcall('HSET', KEYS[11], '~sums', value) end
end
return {
  redis.call('HGETALL', KEYS[1]), redis.call('ZMSCORE', KEYS[2], 'first', 'last'),
  redis.call('HGETALL', KEYS[3]), redis.call('HGETALL', KEYS[4]),
  redis.call('LRANGE', KEYS[5], 0, ARGV[3] - 1), redis.call('LRANGE', KEYS[6], 0, ARGV[4] - 1),
  redis.call('LRANGE', KEYS[7], 0, ARGV[5] - 1), redis.call('HGETALL', KEYS[8]),
  redis.call('HGETALL', KEYS[9]), counts, redis.call('HGETALL', KEYS[10]), redis.call('GET', KEYS[12])
}
"""
READ_KEYS = ("p", "seen", "t", "cart", "items", "search", "sess", "dwell", "votes", "m", "w", "traits")


# On Redis Cluster, before the stream entry goes to its shard: the rate limit and which ids are
# new, in one atomic call. It marks no id: the marks are set by WRITE_LUA together with the
# profile writes, so a batch whose write fails is not taken for a duplicate when retried. A
# refused batch consumes no quota.
PREPARE_LUA = """
local ids = cjson.decode(ARGV[5])  -- one JSON argument, not one per id: less for the client to pack
local n = #ids
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used + n > tonumber(ARGV[3]) then return {-1} end
redis.call('INCRBY', KEYS[2], n)
redis.call('EXPIRE', KEYS[2], ARGV[4])
local fresh = {}
for start = 1, n, 1000 do  -- blocks: Lua's unpack has a limit
  local stop = math.min(start + 999, n)
  -- One HMGET for the batch's ids, not a HEXISTS each: a call costs more than its work here.
  local marks = redis.call('HMGET', KEYS[1], unpack(ids, start, stop))
  for i = start, stop do fresh[i] = marks[i - start + 1] and 0 or 1 end
end
return {used + n, redis.call('ZSCORE', KEYS[3], 'last'), redis.call('HGET', KEYS[4], 'session_start'), fresh}
"""

SCRIPTS = {"read": READ_LUA, "prepare": PREPARE_LUA, "buckets": BUCKETS_LUA, "write": WRITE_LUA}


def visitor_keys(visitor_id: str) -> dict[str, str]:
    return {suffix: f"{KEY_PREFIX}{{{visitor_id}}}:{suffix}" for suffix in PROFILE_KEYS}


def segment_key(slug: str, day: int, shard: int = 0, shards: int = 1) -> str:
    if shards <= 1:
        return f"{KEY_PREFIX}seg:{{{slug}}}:{day}"
    return f"{KEY_PREFIX}seg:{{{shard_tag(shard, shards)}}}:{slug}:{day}"


def recent_key(shard: int = 0, shards: int = 1) -> str:
    return RECENT_KEY if shards <= 1 else f"{RECENT_KEY}:{{{shard_tag(shard, shards)}}}"


def rate_key(visitor_id: str, minute: int) -> str:
    return f"{KEY_PREFIX}{{{visitor_id}}}:rate:{minute}"


class RedisProfileStore:
    def __init__(self, client: redis.Redis, retention_seconds: int, settings: Mapping[str, Any] | None = None):
        settings = settings or {}
        self.client = client
        self.retention_seconds = retention_seconds
        self.session_gap = settings.get("SESSION_GAP_SECONDS", 1800)
        self.dedup_seconds = int(settings.get("DEDUP_SECONDS", 86400))
        self.rate_limit = settings.get("RATE_LIMIT_PER_MINUTE", 600)
        self.stream_maxlen = settings.get("STREAM_MAXLEN", 1_000_000)
        # Visitor shards (tailored.sharding): the stream, recent visitors and segment counts.
        self.shards = max(int(settings.get("EVENT_STREAM_SHARDS", 1)), 1)
        self._appends = 0
        self._shas: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RedisProfileStore:
        url = settings["REDIS_URL"]
        if not url:
            raise ValueError("PERSONALIZATION['REDIS_URL'] is required by RedisProfileStore")
        # Short timeouts and one circuit breaker (tailored.redis_guard): a page must still render,
        # with fallbacks, when Redis is slow, hung or down, and pay for that at most once.
        client = redis_guard.connect(url, settings)
        return cls(client, retention_seconds=int(settings["RETENTION_DAYS"] * 86400), settings=settings)

    # Reading

    def get(self, visitor_id: str, now: float, windows: Collection[Window] = ()) -> Profile:
        return self.get_many([visitor_id], now, windows)[visitor_id]

    def get_for_request(self, visitor_id: str, now: float, windows: Collection[Window] = ()) -> Profile:
        """`get` for a page request (services.resolve_visitor): the script keeps this read's window
        sums for the visitor's next request (READ_LUA). Only this read keeps them: the request's
        windows are the enabled segments', the same on every request, while other readers (the
        worker's batches, live counts, admin views) each ask for their own and, keeping theirs
        in the same place, would make every request sum everything again."""
        return self.get_many([visitor_id], now, windows, keep_sums=True)[visitor_id]

    def get_many(self, visitor_ids: Iterable[str], now: float, windows: Collection[Window] = (), keep_sums: bool = False) -> dict[str, Profile]:
        ids = list(dict.fromkeys(visitor_ids))
        if not isinstance(windows, frozenset | tuple):
            windows = frozenset(windows)  # hashable, for the plan's cache
        args, order = _windows_plan(windows)
        if not keep_sums:
            args = ("", *args[1:])  # no digest: READ_LUA sums every pair and keeps nothing
        replies = self._with_scripts(lambda: self._read(ids, args, now))
        return {visitor_id: _parse_profile(visitor_id, reply, order) for visitor_id, reply in zip(ids, replies, strict=True)}

    def _with_scripts(self, call):
        """Run `call` with the Lua scripts loaded (once per process, again after a Redis restart).
        EVALSHA is used directly: redis-py's Script objects add a SCRIPT EXISTS trip per pipeline."""
        if not self._shas:
            self._shas = {name: self.client.script_load(source) for name, source in SCRIPTS.items()}
        try:
            return call()
        except redis.exceptions.NoScriptError:
            self._shas = {}
            return self._with_scripts(call)

    def _read(self, ids: list[str], windows_args: tuple[Any, ...], now: float) -> list[Any]:
        if len(ids) == 1 and isinstance(self.client, RedisCluster):
            # A request's one visitor on Redis Cluster: the call itself, without a cluster
            # pipeline's grouping by node, which costs as much as the read (issue 19).
            return [self._queue_read(self.client, visitor_keys(ids[0]), windows_args, now)]
        pipe = self.client.pipeline(transaction=False)
        for visitor_id in ids:
            self._queue_read(pipe, visitor_keys(visitor_id), windows_args, now)
        return pipe.execute()

    def _queue_read(self, pipe, keys: dict[str, str], windows_args: tuple[Any, ...], now: float) -> Any:
        """One visitor's READ_LUA call (queued on a pipeline, or run on a client); `windows_args`
        from `_windows_plan`."""
        return pipe.evalsha(
            self._shas["read"], len(READ_KEYS), *(keys[k] for k in READ_KEYS),
            hour_bucket(now), HOURLY_HOURS, RECENT_ITEMS, RECENT_SEARCHES, RECENT_SESSIONS, *windows_args,
        )

    # Writing

    def record(
        self, visitor_id: str, events: Sequence[Event], now: float, snapshot: Snapshot | None = None,
        build_profile: bool = True, resolved_at: float | None = None,
    ) -> RecordResult:
        if not events:
            return RecordResult(stored=(), duplicates=0)
        since = now if resolved_at is None else resolved_at  # a tombstone from then on refuses the batch
        return self._with_scripts(lambda: self._record(visitor_id, events, now, snapshot if build_profile else None, build_profile, since))

    def _record(
        self, visitor_id: str, events: Sequence[Event], now: float, snapshot: Snapshot | None, build_profile: bool, since: float,
    ) -> RecordResult:
        """One round trip on one Redis (WRITE_LUA); a second only when a concurrent copy of the
        batch marked some of its ids first (the rest then go again)."""
        if isinstance(self.client, RedisCluster):
            return self._record_on_cluster(visitor_id, events, now, snapshot, build_profile, since)
        keys = visitor_keys(visitor_id)
        unique = _first_of_each_id(events)  # an id repeated within the batch counts once
        rate = [rate_key(visitor_id, int(now // 60)), self.rate_limit, len(events), RATE_KEY_SECONDS]
        while unique:
            reply = self._write(visitor_id, keys, unique, snapshot, build_profile, now, rate, since)
            if reply[0] == -2:  # erased since this request resolved them: nothing is written
                return RecordResult(stored=(), duplicates=0)
            if reply[0] == -1:
                return RecordResult(stored=(), duplicates=0, rate_limited=True)
            if reply[0] == 1:
                break
            taken = set(reply[1])
            unique = [event for event in unique if event.id not in taken]
            rate = [rate[0], self.rate_limit, 0, RATE_KEY_SECONDS]  # the batch was charged once
        return RecordResult(stored=tuple(unique), duplicates=len(events) - len(unique))

    def _write(
        self, visitor_id: str, keys: dict[str, str], events: list[Event], snapshot: Snapshot | None,
        build_profile: bool, now: float, rate: list[Any], since: float,
    ) -> list[Any]:
        """The batch's one script call: rate limit, marks, stream entry, profile and shared
        counts (WRITE_LUA's reply). Without a profile (analytics-only consent) only the entry
        and the marks are written."""
        writes = self._writes(visitor_id, keys, events, snapshot if build_profile else None, now, build_profile)
        shard = shard_of(visitor_id, self.shards)
        stream = stream_key(shard, self.shards)
        fields = encode_batch(visitor_id, events, analytics_only=not build_profile)
        entry = [stream, min_id(now, self.retention_seconds)]
        erased = [ERASED_KEY, erased_digest(visitor_id), repr(since)]  # one Redis: the script reads the tombstones too
        program = writes.program([event.id for event in events], now, self.dedup_seconds, rate, entry, with_shared=True, erased=erased)
        trip = self.client.pipeline(transaction=False)
        # One key names the script's place (every key of the visitor shares its hash tag).
        trip.evalsha(self._shas["write"], 1, keys["ids"], program, *(part for pair in fields.items() for part in pair))
        self._appends += 1
        if self._appends % 100 == 0:  # see _append
            trip.xtrim(stream, maxlen=max(self.stream_maxlen // self.shards, 1), approximate=True)
        reply, *_trimmed = trip.execute(raise_on_error=False)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _writes(self, visitor_id: str, keys: dict[str, str], events: list[Event], snapshot: Snapshot | None, now: float, build_profile: bool) -> BatchWrites:
        writes = BatchWrites(keys, self.retention_seconds)
        if snapshot is not None:
            shard = shard_of(visitor_id, self.shards)
            day = int(now // 86400)
            segment_keys = {slug: segment_key(slug, day, shard, self.shards) for slug in snapshot.segments}
            keep = min(RECENT_KEEP_SECONDS, self.retention_seconds)
            writes.snapshot(visitor_id, snapshot, now, recent_key(shard, self.shards), segment_keys, keep)
        if build_profile:
            # The session is left out of the delta: the script picks it from session_options.
            delta = delta_for(events, session_gap=self.session_gap, with_session=False)
            writes.profile(delta, session_options(events, self.session_gap), self.session_gap, now)
        return writes

    def _record_on_cluster(
        self, visitor_id: str, events: Sequence[Event], now: float, snapshot: Snapshot | None, build_profile: bool, since: float,
    ) -> RecordResult:
        """`_record` on Redis Cluster (issue 19): the stream shard and the visitor are on two nodes,
        and a cluster pipeline sends to both at once, so the entry could fail (its master dying)
        while the marks commit; the client's retry would then be taken for a duplicate and
        answered 202 with no entry anywhere. So the rate limit and the dedup check come first
        (PREPARE_LUA), then the entry of the new events (with its shard's keys), and the profile
        and marks (WRITE_LUA) only once it is in: two round trips more than on one Redis."""
        erased_at = self.client.zscore(ERASED_KEY, erased_digest(visitor_id))
        if erased_at is not None and erased_at >= since:
            return RecordResult(stored=(), duplicates=0)  # erased since this request resolved them
        keys = visitor_keys(visitor_id)
        prepare_keys = [keys["ids"], rate_key(visitor_id, int(now // 60)), keys["seen"], keys["p"]]
        args = [int(now), self.dedup_seconds, self.rate_limit, RATE_KEY_SECONDS, json_out.dumps([event.id for event in events])]
        reply = self.client.evalsha(self._shas["prepare"], len(prepare_keys), *prepare_keys, *args)
        if reply[0] == -1:
            return RecordResult(stored=(), duplicates=0, rate_limited=True)
        new_ids = {event.id for event, is_new in zip(events, reply[3], strict=True) if is_new}
        fresh = [event for event in _first_of_each_id(events) if event.id in new_ids]
        if not fresh:
            return RecordResult(stored=(), duplicates=len(events))
        writes = self._writes(visitor_id, keys, fresh, snapshot if build_profile else None, now, build_profile)
        trip = self.client.pipeline(transaction=False)
        self._append(trip, visitor_id, fresh, now, analytics_only=not build_profile)
        for command in writes.shared:
            trip.execute_command(*command)
        stream_reply, *_shared = trip.execute(raise_on_error=False)
        if isinstance(stream_reply, Exception):
            raise stream_reply  # nothing marked: the client keeps the batch and sends it again
        program = writes.program([event.id for event in fresh], now, self.dedup_seconds, [], [], with_shared=False)
        applied = self.client.evalsha(self._shas["write"], 1, keys["ids"], program)
        if applied[0] == 1:
            return RecordResult(stored=tuple(fresh), duplicates=len(events) - len(fresh))
        # A concurrent copy of the batch committed some ids first and this write was not applied:
        # the rest go again from the new prior state.
        taken = set(applied[1])
        rest = [event for event in fresh if event.id not in taken]
        again = self._record_on_cluster(visitor_id, rest, now, snapshot, build_profile, since) if rest else RecordResult(stored=(), duplicates=0)
        return RecordResult(stored=again.stored, duplicates=len(events) - len(again.stored), rate_limited=again.rate_limited)

    def _append(self, client, visitor_id: str, events: Sequence[Event], now: float, analytics_only: bool) -> None:
        """The batch's stream entry on Redis Cluster; entries older than the retention period go
        (MINID), and, checked every 100th append, those beyond STREAM_MAXLEN (a memory cap for a
        long outage of the workers: the oldest unstored events are then lost)."""
        stream = stream_key(shard_of(visitor_id, self.shards), self.shards)
        client.xadd(stream, encode_batch(visitor_id, events, analytics_only), minid=min_id(now, self.retention_seconds), approximate=True)
        self._appends += 1
        if self._appends % 100 == 0:
            # Each shard holds about 1/N of the entries: STREAM_MAXLEN is shared out.
            client.xtrim(stream, maxlen=max(self.stream_maxlen // self.shards, 1), approximate=True)

    def _queue_buckets(self, pipe, bucket_key: str, triples: list[Any], now: float) -> None:
        if triples:
            hour = hour_bucket(now)
            floors = (hour - HOURLY_HOURS + 1, (hour - MAX_WINDOW_HOURS) // 24 + 1)
            pipe.evalsha(self._shas["buckets"], 1, bucket_key, *floors, "f", *triples)

    def _queue_sorted_lists(self, pipe, source: dict[str, str], target: dict[str, str], dumped: dict[str, Any]) -> None:
        """Recent items and session starts stay newest first when two visitors' lists meet, so
        reads never sort."""
        current = self.client.pipeline(transaction=False)
        current.lrange(target["items"], 0, -1)
        current.lrange(target["sess"], 0, -1)
        items, sessions = current.execute()
        merged_items = sorted({*items, *dumped["items"]}, key=lambda entry: -float(entry.rpartition("@")[2]))
        merged_sessions = sorted({*sessions, *dumped["sess"]}, key=float, reverse=True)
        for key, values, cap in ((target["items"], merged_items, RECENT_ITEMS), (target["sess"], merged_sessions, RECENT_SESSIONS)):
            if values:
                pipe.delete(key)
                pipe.rpush(key, *values[:cap])

    def set_preferences(self, visitor_id: str, categories: Sequence[str]) -> None:
        key = visitor_keys(visitor_id)["m"]
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, "preferences", ",".join(dict.fromkeys(categories)))
        pipe.expire(key, self.retention_seconds)
        pipe.execute()

    def set_traits(self, visitor_id: str, traits: Mapping[str, Any]) -> None:
        self.set_traits_many({visitor_id: traits})

    def set_traits_many(self, traits_by_visitor: Mapping[str, Mapping[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for visitor_id, traits in traits_by_visitor.items():
            key = visitor_keys(visitor_id)["traits"]
            if traits:
                pipe.set(key, json.dumps(dict(traits), sort_keys=True), ex=self.retention_seconds)
            else:
                pipe.delete(key)
        pipe.execute()

    def set_model_outputs(self, outputs: Mapping[str, tuple[str | None, Mapping[str, float]]]) -> int:
        written = 0
        items = list(outputs.items())
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            present = self.client.pipeline(transaction=False)
            for visitor_id, _ in chunk:
                present.exists(visitor_keys(visitor_id)["seen"])
            pipe = self.client.pipeline(transaction=False)
            for (visitor_id, (persona, scores)), exists in zip(chunk, present.execute(), strict=True):
                if exists:
                    _queue_model_output(pipe, visitor_keys(visitor_id)["m"], persona, scores, self.retention_seconds)
                    written += 1
            pipe.execute()
        return written

    def assign(self, visitor_id: str, experiment: str, arm: str) -> str:
        key = visitor_keys(visitor_id)["m"]
        pipe = self.client.pipeline(transaction=False)
        pipe.hsetnx(key, f"x:{experiment}", arm)
        pipe.hget(key, f"x:{experiment}")
        pipe.expire(key, self.retention_seconds)
        return pipe.execute()[1]

    def clear_assignments(self, experiment: str, visitor_ids: Iterable[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for visitor_id in visitor_ids:
            pipe.hdel(visitor_keys(visitor_id)["m"], f"x:{experiment}")
        pipe.execute()

    def recent_visitors(self, since: float, limit: int) -> list[str]:
        if self.shards == 1:
            return self.client.zrevrangebyscore(RECENT_KEY, "+inf", since, start=0, num=limit)
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.shards):
            pipe.zrevrangebyscore(recent_key(shard, self.shards), "+inf", since, start=0, num=limit, withscores=True)
        # Each shard's newest `limit`, merged: the newest `limit` overall.
        merged = sorted((pair for reply in pipe.execute() for pair in reply), key=lambda pair: -pair[1])
        return [visitor_id for visitor_id, _ in merged[:limit]]

    def segment_sizes(self, slug: str, days: int, now: float) -> list[tuple[int, int]]:
        return self.segment_sizes_many([slug], days, now)[slug]

    def segment_sizes_many(self, slugs: Sequence[str], days: int, now: float) -> dict[str, list[tuple[int, int]]]:
        today = int(now // 86400)
        span = range(today - days + 1, today + 1)
        pipe = self.client.pipeline(transaction=False)
        for slug in slugs:
            for day in span:
                for shard in range(self.shards):
                    # As a command: redis-py refuses pfcount() in a cluster pipeline (it could name
                    # several keys); one key is one slot.
                    pipe.execute_command("PFCOUNT", segment_key(slug, day, shard, self.shards))
        counts = iter(pipe.execute())
        # A visitor is counted in one shard only (theirs): the shards' counts add up.
        return {slug: [(day, sum(next(counts) for _ in range(self.shards))) for day in span] for slug in slugs}

    def merge(self, source_id: str, target_id: str, now: float) -> None:
        if source_id == target_id:
            return
        source, target = visitor_keys(source_id), visitor_keys(target_id)
        if not self.client.exists(*source.values()):
            return
        dumped = self._read_raw(source)
        pipe = self.client.pipeline(transaction=False)
        triples = [part for field, raw in _series_fields(dumped["w"]) for bucket, n in _series(raw).items() for part in (field, bucket, n)]
        self._queue_sorted_lists(pipe, source, target, dumped)
        self._queue_buckets(pipe, target["w"], triples, now)
        _queue_merge(pipe, target, dumped)
        for key in target.values():
            pipe.expire(key, self.retention_seconds)
        pipe.execute_command("DEL", *source.values())  # one slot: a cluster pipeline takes it as one DEL
        pipe.execute()

    def _read_raw(self, keys: dict[str, str]) -> dict[str, Any]:
        pipe = self.client.pipeline(transaction=False)
        for suffix in ("p", "w", "t", "cart", "dwell", "votes", "ids", "m"):
            pipe.hgetall(keys[suffix])
        pipe.zmscore(keys["seen"], ["first", "last"])
        for suffix in ("items", "search", "sess"):
            pipe.lrange(keys[suffix], 0, -1)
        names = ("p", "w", "t", "cart", "dwell", "votes", "ids", "m", "seen", "items", "search", "sess")
        return dict(zip(names, pipe.execute(), strict=True))

    def erase(self, visitor_id: str, now: float | None = None) -> dict[str, int]:
        """Every key and membership that carries the id, the visitor's stream entries and dead
        letters; then a tombstone, so a worker that is behind never stores the rest."""
        now = time.time() if now is None else now
        minute = int(now // 60)
        rate_keys = [rate_key(visitor_id, m) for m in range(minute - 3, minute + 1)]  # they live 120 s
        seconds, micros = self.client.time()  # Redis's clock: the one that stamps stream entries
        # The tombstone in a round trip of its own: should Redis refuse it (out of memory, a
        # replica), nothing is deleted, and the caller queues the whole erasure instead.
        self.client.zadd(ERASED_KEY, {erased_digest(visitor_id): seconds + micros / 1e6})
        pipe = self.client.pipeline(transaction=False)
        pipe.zremrangebyscore(ERASED_KEY, "-inf", now - self.retention_seconds)
        pipe.execute_command("DEL", *visitor_keys(visitor_id).values(), *rate_keys)  # the visitor's slot
        shard = shard_of(visitor_id, self.shards)
        pipe.zrem(recent_key(shard, self.shards), visitor_id)
        pipe.zrem(CART_WATCH_KEY, visitor_id)
        _, keys_removed, *_ = pipe.execute()
        return {
            "profile_keys": keys_removed,
            "stream_entries": self._delete_entries(stream_key(shard, self.shards), visitor_id),
            "dead_letters": self._delete_entries(DEAD_LETTER_KEY, visitor_id),
        }

    def purge(self, now: float) -> dict[str, int]:
        """Trim the streams and sets by age, and end profiles and segment counts kept longer than
        RETENTION_DAYS (written under a longer setting: expiry alone would keep them)."""
        cutoff = now - self.retention_seconds
        pipe = self.client.pipeline(transaction=False)
        for stream in stream_keys(self.shards):
            pipe.xtrim(stream, minid=min_id(now, self.retention_seconds), approximate=False)
        pipe.xtrim(DEAD_LETTER_KEY, minid=min_id(now, self.retention_seconds), approximate=False)
        pipe.zremrangebyscore(ERASED_KEY, "-inf", cutoff)
        for shard in range(self.shards):
            pipe.zremrangebyscore(recent_key(shard, self.shards), "-inf", now - min(RECENT_KEEP_SECONDS, self.retention_seconds))
        *stream_trims, dead_letters, tombstones = pipe.execute()[: self.shards + 2]
        stream_entries = sum(stream_trims)
        return {
            "stream entries": stream_entries,
            "dead letters": dead_letters,
            "tombstones": tombstones,
            "profiles": self._purge_profiles(cutoff),
            "segment days": self._purge_segment_days(int(cutoff // 86400)),
        }

    def _purge_profiles(self, cutoff: float) -> int:
        """Delete the profiles last active before `cutoff`; cap the others' expiry at their last
        activity plus the retention period. Returns how many were deleted."""
        deleted, chunk = 0, []
        # Chunks of 500 as SCAN yields them: millions of profiles never sit in one list.
        for key in self.client.scan_iter(match=f"{KEY_PREFIX}{{*}}:seen", count=1000):
            chunk.append(key)
            if len(chunk) == 500:
                deleted += self._purge_profile_chunk(chunk, cutoff)
                chunk = []
        return deleted + (self._purge_profile_chunk(chunk, cutoff) if chunk else 0)

    def _purge_profile_chunk(self, chunk: list[str], cutoff: float) -> int:
        reads = self.client.pipeline(transaction=False)
        for key in chunk:
            reads.zscore(key, "last")
        deleted, pipe = 0, self.client.pipeline(transaction=False)
        for key, last in zip(chunk, reads.execute(), strict=True):
            keys = visitor_keys(key[len(KEY_PREFIX) + 1 : key.index("}")])
            if last is None or float(last) < cutoff:
                pipe.execute_command("DEL", *keys.values())  # the visitor's slot
                deleted += 1
            else:
                for name in keys.values():
                    pipe.expireat(name, int(float(last) + self.retention_seconds), lt=True)
        pipe.execute()
        return deleted

    def _purge_segment_days(self, cutoff_day: int) -> int:
        old = [key for key in self.client.scan_iter(match=f"{KEY_PREFIX}seg:*", count=1000) if int(key.rsplit(":", 1)[1]) < cutoff_day]
        return self.client.delete(*old) if old else 0

    def _delete_entries(self, stream: str, visitor_id: str) -> int:
        """Delete a stream's entries of one visitor (field v): every dead letter; of the event
        stream, those read within ERASE_STREAM_SECONDS (the tombstone covers the rest)."""
        stop_after = None if stream == DEAD_LETTER_KEY else ERASE_STREAM_SECONDS
        doomed = [entry_id for entry_id, _ in self._visitor_entries(stream, visitor_id, "erasure", stop_after)]
        return self.client.xdel(stream, *doomed) if doomed else 0

    def _visitor_entries(
        self, stream: str, visitor_id: str, purpose: str, stop_after: float | None = None
    ) -> list[tuple[str, dict[str, str]]]:
        """A stream's entries of one visitor (field v), read to the stream's end in pages of
        SCAN_PAGE, under the scan's own Redis allowance (SCAN_SECONDS). With `stop_after`
        (seconds) the read stops there instead, logged."""
        if not redis_guard.available(self.client):  # a request that gave up on Redis gets no fresh allowance
            raise redis_guard.Unavailable("Redis skipped for the rest of this request")
        found: list[tuple[str, dict[str, str]]] = []
        start, scanned, began = "-", 0, time.monotonic()
        with redis_guard.request_budget(SCAN_SECONDS):
            while True:
                page = self.client.xrange(stream, min=start, count=SCAN_PAGE)
                found += [(entry_id, fields) for entry_id, fields in page if fields.get("v") == visitor_id]
                scanned += len(page)
                if len(page) < SCAN_PAGE:
                    return found
                start = "(" + page[-1][0]
                if stop_after is not None and time.monotonic() - began > stop_after:
                    logger.warning("%s read the first %d entries of %s only (%.1f s)", purpose, scanned, stream, stop_after)
                    return found

    def export(self, visitor_id: str, now: float) -> dict[str, Any]:
        """The profile and its counters, and what is held in the streams: batches the worker has
        not stored yet, and dead letters (batches or events it could not store), as they came;
        and when the cart-abandonment schedule checks the visitor's cart next."""
        keys = visitor_keys(visitor_id)
        waiting = self._visitor_entries(visitor_stream(visitor_id, self.shards), visitor_id, "export")
        dead = self._visitor_entries(DEAD_LETTER_KEY, visitor_id, "export")
        cart_check = self.client.zscore(CART_WATCH_KEY, visitor_id)
        return {
            "cart_abandonment_check_at": None if cart_check is None else float(cart_check),
            "profile": profile_to_json(self.get(visitor_id, now)),
            "counters": {name: _series(raw) for name, raw in _series_fields(self.client.hgetall(keys["w"]))},
            "waiting_events": [
                {"received_at": appended_at(entry_id), "events": _json_or_text(fields.get("e", "[]"))} for entry_id, fields in waiting
            ],
            "dead_letters": [
                {"received_at": appended_at(entry_id), "reason": fields.get("reason", ""), "held": _json_or_text(fields.get("e", ""))}
                for entry_id, fields in dead
            ],
        }

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False


def _json_or_text(raw: str) -> Any:
    """A stream field as held: its JSON, or the text itself when it does not parse (a dead
    letter's payload is cut at 64 KiB)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _queue_model_output(pipe, key: str, persona: str | None, scores: Mapping[str, float], ttl: int) -> None:
    if persona is None:
        pipe.hdel(key, "persona")
    else:
        pipe.hset(key, "persona", persona)
    if scores:
        pipe.hset(key, mapping={f"score:{name}": round(float(value), 6) for name, value in scores.items()})
    pipe.expire(key, ttl)


def _series_fields(w: Mapping[str, str]) -> list[tuple[str, str]]:
    """The time-bucket series of a `w` hash (HGETALL), without the read script's kept sums."""
    return [(name, raw) for name, raw in w.items() if name != SUMS_FIELD]


def _series(raw: str) -> dict[int, int]:
    """A time-bucket series as {bucket: count}; a bucket may have several pairs (BUCKETS_LUA
    appends), which add up."""
    counts: dict[int, int] = {}
    for bucket, _, n in (pair.partition(":") for pair in raw.split()):
        counts[int(bucket)] = counts.get(int(bucket), 0) + int(n)
    return counts


def _queue_merge(pipe, target: dict[str, str], raw: dict[str, Any]) -> None:
    """Sum the source's counters into the target (once: the source is deleted in the same pipeline)."""
    for suffix in ("t", "cart"):
        for name, value in raw[suffix].items():
            pipe.hincrby(target[suffix], name, int(value))
    for name, value in raw["dwell"].items():
        pipe.hincrbyfloat(target["dwell"], name, float(value))
    for name in INT_FIELDS:
        if name in raw["p"] and name not in ("session_content_views",):
            pipe.hincrby(target["p"], name, int(raw["p"][name]))
    if "ltv" in raw["p"]:
        pipe.hincrbyfloat(target["p"], "ltv", float(raw["p"]["ltv"]))
    for name in ("session_start", "cart_updated_at", "last_purchase_at"):
        if name in raw["p"]:
            pipe.hset(target["p"], name, raw["p"][name])
    first, last = raw["seen"]
    if first is not None:
        pipe.zadd(target["seen"], {"first": first}, lt=True)
        pipe.zadd(target["seen"], {"last": last}, gt=True)
    if raw["votes"]:
        pipe.hset(target["votes"], mapping=raw["votes"])
    if raw["ids"]:
        pipe.hset(target["ids"], mapping=raw["ids"])
    for name, arm in raw["m"].items():
        if name.startswith("x:"):  # the target keeps its own arms
            pipe.hsetnx(target["m"], name, arm)
    for suffix, cap in (("search", RECENT_SEARCHES),):
        if raw[suffix]:
            pipe.rpush(target[suffix], *raw[suffix])
            pipe.ltrim(target[suffix], 0, cap - 1)


@lru_cache(maxsize=64)
def _windows_plan(windows: Collection[Window]) -> tuple[tuple[Any, ...], tuple[Window, ...]]:
    """The windows as READ_LUA takes them (ARGV[6] on: the plan's digest, under which the script
    keeps its sums, then the plan), and the windows in the order their counts come back. The
    same frozenset comes with every request (its hash is cached), so this runs once per segment
    set."""
    groups: dict[str, list[tuple[int, Window]]] = {}
    for window in windows:
        hours = min(window.hours, MAX_WINDOW_HOURS)
        hourly = hours <= HOURLY_HOURS
        span = hours if hourly else -(-hours // 24)  # whole days, as math.ceil(hours / 24)
        groups.setdefault(f"{window.counter}|{'h' if hourly else 'd'}", []).append((span, window))
    spans: list[int] = []
    order: list[Window] = []
    for pairs in groups.values():
        pairs.sort(key=lambda pair: pair[0])  # narrowest first: READ_LUA walks them widest down
        spans += [len(pairs), *(span for span, _ in pairs)]
        order += [window for _, window in pairs]
    plan = (len(groups), *groups, *spans)
    digest = hashlib.blake2b("\x1f".join(map(str, plan)).encode(), digest_size=6).hexdigest()
    return (digest, *plan), tuple(order)


def _first_of_each_id(events: Sequence[Event]) -> list[Event]:
    seen: set[str] = set()
    return [event for event in events if not (event.id in seen or seen.add(event.id))]


def _pairs(flat: list[str]) -> dict[str, str]:
    """A HGETALL reply as Lua returns it (field, value, field, value...) as a dict."""
    if not flat:
        return {}
    pairs = iter(flat)
    return dict(zip(pairs, pairs, strict=True))


def _parse_profile(visitor_id: str, reply: list[Any], order: tuple[Window, ...]) -> Profile:
    """The Profile of one READ_LUA reply (`order`: the windows as their counts come back). On
    every request's path: list comprehensions and no per-item helper calls; the recent items and
    session starts (84 timestamps on a busy profile) are parsed only if something reads them."""
    scalars, seen, totals, cart, items, searches, sessions, dwell, votes, window_counts, model, traits = reply
    scalars, totals, cart, dwell, votes, model = map(_pairs, (scalars, totals, cart, dwell, votes, model))
    first_seen, last_seen = seen
    get = scalars.get
    return Profile(
        visitor_id=visitor_id,
        first_seen=None if first_seen is None else float(first_seen),
        last_seen=None if last_seen is None else float(last_seen),
        page_views=int(get("page_views", 0)),
        sessions=int(get("sessions", 0)),
        session_start=_float(get("session_start")),
        session_starts=LazyTuple(sessions, _session_starts),  # newest first: pushed in order, merged sorted
        session_content_views=int(get("session_content_views", 0)),
        session_converted=get("session_converted") == "1",
        event_counts={name[2:]: int(v) for name, v in totals.items() if name[:2] == "e:"},
        category_views={name[2:]: int(v) for name, v in totals.items() if name[:2] == "c:"},
        cart={item: int(q) for item, q in cart.items() if int(q) > 0} if cart else {},
        cart_updated_at=_float(get("cart_updated_at")),
        purchases=int(get("purchases", 0)),
        lifetime_value=float(get("ltv", 0.0)),
        last_purchase_at=_float(get("last_purchase_at")),
        recent_items=LazyTuple(items, _recent_items),
        recent_searches=tuple(searches),
        dwell=_dwell(dwell) if dwell else {},
        scroll=(int(get("scroll_sum", 0)), int(get("scroll_n", 0))),
        down_votes=frozenset([item for item, vote in votes.items() if vote == "down"]) if votes else frozenset(),
        last_device=get("last_device"),
        last_country=get("last_country"),
        persona=model.get("persona"),
        scores={name[6:]: float(v) for name, v in model.items() if name[:6] == "score:"} if model else {},
        preferences=tuple(filter(None, model.get("preferences", "").split(","))) if model else (),
        assignments={name[2:]: arm for name, arm in model.items() if name[:2] == "x:"} if model else {},
        visit_landing=get("visit_landing") or None,
        visit_query=parse_kept(get("visit_query")),
        windows=dict(zip(order, window_counts, strict=True)),  # Lua numbers come back as integers
        traits=json.loads(traits) if traits else {},
    )


def _session_starts(raw: list[str]) -> tuple[float, ...]:
    return tuple(map(float, raw))


def _recent_items(raw: list[str]) -> tuple[tuple[str, float], ...]:
    return tuple([(item, float(ts)) for item, _, ts in [entry.rpartition("@") for entry in raw]])


def _dwell(raw: dict[str, str]) -> dict[str, tuple[float, int]]:
    categories = {name.rpartition("|")[0] for name in raw}
    return {c: (float(raw.get(f"{c}|s", 0.0)), int(raw.get(f"{c}|n", 0))) for c in categories}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
