"""Redis profile store. Every key of one visitor shares the hash tag `{visitor}`, so the same
code runs on Redis Cluster. A request reads a profile in one pipelined round trip; a batch of
events costs two (dedup and prior state, then every write and the stream append).

Keys (all expire after the retention period, renewed on every write):
    tl:v1:{vid}:p       hash    scalars (page_views, sessions, cart_updated_at, purchases, ltv, ...)
    tl:v1:{vid}:seen    zset    "first"/"last" scored by epoch seconds (ZADD LT/GT keeps min/max)
    tl:v1:{vid}:w       hash    time buckets "<counter>|h<epoch hour>" and "<counter>|d<epoch day>"
    tl:v1:{vid}:t       hash    totals "e:<event type>" and "c:<category>" (page views)
    tl:v1:{vid}:cart    hash    product id -> quantity (lines at 0 or below are ignored and pruned)
    tl:v1:{vid}:items   list    "<item>@<ts>" viewed items, newest first, capped
    tl:v1:{vid}:search  list    recent search terms, newest first, capped
    tl:v1:{vid}:sess    list    session start times, newest first, capped
    tl:v1:{vid}:dwell   hash    "<category>|s" seconds and "<category>|n" count
    tl:v1:{vid}:votes   hash    product id -> up | down
    tl:v1:{vid}:ids     hash    client event id -> first seen (the dedup window; expires with it)
    tl:v1:{vid}:m       hash    model outputs: persona, score:<name>, and onboarding preferences
    tl:v1:recent        zset    visitor -> last event time, the last 7 days (live segment counts)
    tl:v1:seg:{slug}:<day>  HyperLogLog of the visitors who matched the segment that day
    tl:v1:{vid}:rate:<minute>   string  events accepted this minute (rate limit)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import redis

from personalization.core.counters import (
    RECENT_ITEMS,
    RECENT_SEARCHES,
    RECENT_SESSIONS,
    PriorState,
    ProfileDelta,
    delta_for,
)
from personalization.core.types import Event, Profile, Snapshot, Window, hour_bucket
from personalization.core.windows import HOURLY_HOURS, MAX_WINDOW_HOURS
from personalization.events.stream import STREAM_KEY, encode_batch

from .base import RecordResult, profile_to_json

KEY_PREFIX = "tl:v1:"
PROFILE_KEYS = ("p", "seen", "w", "t", "cart", "items", "search", "sess", "dwell", "votes", "ids", "m")
RECENT_KEY = "tl:v1:recent"  # zset: visitor -> last event time (for live segment counts)
RECENT_KEEP_SECONDS = 7 * 86400
SEGMENT_DAYS_KEPT = 400
INT_FIELDS = ("page_views", "sessions", "session_content_views", "purchases", "scroll_sum", "scroll_n")
FLOAT_FIELDS = ("session_start", "cart_updated_at", "ltv", "last_purchase_at")

# Sums the asked-for windows server-side, so a request reads a few integers, not every bucket.
# Mirrors personalization.core.windows.window_buckets (the reference implementation).
WINDOWS_LUA = """
local now_hour = tonumber(ARGV[1])
local hourly_hours = tonumber(ARGV[2])
local today = math.floor(now_hour / 24)
local result, totals = {}, {}
for i = 3, #ARGV, 2 do
  local counter, hours = ARGV[i], tonumber(ARGV[i + 1])
  local hourly = hours <= hourly_hours
  local span = hourly and hours or math.ceil(hours / 24)
  local group = counter .. (hourly and '|h' or '|d')
  -- Windows arrive longest first, so each counter's buckets are read once (one HMGET) and every
  -- shorter window of that counter is a prefix sum of the same reply.
  local running = totals[group]
  if running == nil then
    local newest = hourly and now_hour or today
    local fields = {}
    for k = 0, span - 1 do fields[k + 1] = group .. (newest - k) end
    running = {}
    local sum = 0
    for k, value in ipairs(redis.call('HMGET', KEYS[1], unpack(fields))) do
      if value then sum = sum + tonumber(value) end
      running[k] = sum
    end
    totals[group] = running
  end
  result[#result + 1] = running[span]
end
return result
"""


# Rate limit, dedup and prior state in one atomic call. A refused batch consumes no quota and
# marks no id, so its retry after the limit is not taken for a duplicate.
PREPARE_LUA = """
local n = #ARGV - 4
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used + n > tonumber(ARGV[3]) then return {-1} end
redis.call('INCRBY', KEYS[2], n)
redis.call('EXPIRE', KEYS[2], ARGV[4])
local fresh = {}
for i = 5, #ARGV do fresh[#fresh + 1] = redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {used + n, redis.call('ZSCORE', KEYS[3], 'last'), redis.call('HGET', KEYS[4], 'session_start'),
        redis.call('GET', KEYS[5]), fresh}
"""

# Many increments of one hash in one command: redis-py's per-command cost, not Redis, is what a
# batch of events pays for, so the counters go over as one call per hash.
INCREMENT_LUA = """
local command = ARGV[1] == 'float' and 'HINCRBYFLOAT' or 'HINCRBY'
for i = 2, #ARGV, 2 do redis.call(command, KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

EXPIRE_LUA = """
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end
return 1
"""

SCRIPTS = {"windows": WINDOWS_LUA, "prepare": PREPARE_LUA, "increment": INCREMENT_LUA, "expire": EXPIRE_LUA}


def visitor_keys(visitor_id: str) -> dict[str, str]:
    return {suffix: f"{KEY_PREFIX}{{{visitor_id}}}:{suffix}" for suffix in PROFILE_KEYS}


def segment_key(slug: str, day: int) -> str:
    return f"{KEY_PREFIX}seg:{{{slug}}}:{day}"


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
        self._shas: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RedisProfileStore:
        url = settings["REDIS_URL"]
        if not url:
            raise ValueError("PERSONALIZATION['REDIS_URL'] is required by RedisProfileStore")
        # Short timeouts: a page must still render (with fallbacks) when Redis is slow or down.
        client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, retention_seconds=int(settings["RETENTION_DAYS"] * 86400), settings=settings)

    # Reading

    def get(self, visitor_id: str, now: float, windows: Collection[Window] = ()) -> Profile:
        return self.get_many([visitor_id], now, windows)[visitor_id]

    def get_many(self, visitor_ids: Iterable[str], now: float, windows: Collection[Window] = ()) -> dict[str, Profile]:
        ids = list(dict.fromkeys(visitor_ids))
        windows = tuple(windows)
        replies = self._with_scripts(lambda: self._read(ids, windows, now))
        per_visitor = len(replies) // max(len(ids), 1)
        return {
            visitor_id: _parse_profile(visitor_id, replies[i * per_visitor : (i + 1) * per_visitor], windows)
            for i, visitor_id in enumerate(ids)
        }

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

    def _read(self, ids: list[str], windows: tuple[Window, ...], now: float) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for visitor_id in ids:
            self._queue_read(pipe, visitor_keys(visitor_id), windows, now)
        return pipe.execute()

    def _queue_read(self, pipe, keys: dict[str, str], windows: tuple[Window, ...], now: float) -> None:
        pipe.hgetall(keys["p"])
        pipe.zmscore(keys["seen"], ["first", "last"])
        pipe.hgetall(keys["t"])
        pipe.hgetall(keys["cart"])
        pipe.lrange(keys["items"], 0, RECENT_ITEMS - 1)
        pipe.lrange(keys["search"], 0, RECENT_SEARCHES - 1)
        pipe.lrange(keys["sess"], 0, RECENT_SESSIONS - 1)
        pipe.hgetall(keys["dwell"])
        pipe.hgetall(keys["votes"])
        args: list[Any] = [hour_bucket(now), HOURLY_HOURS]
        for window in _longest_first(windows):
            args += [window.counter, min(window.hours, MAX_WINDOW_HOURS)]
        pipe.evalsha(self._shas["windows"], 1, keys["w"], *args)
        pipe.hgetall(keys["m"])

    # Writing

    def record(self, visitor_id: str, events: Sequence[Event], now: float, snapshot: Snapshot | None = None) -> RecordResult:
        if not events:
            return RecordResult(stored=(), duplicates=0)
        return self._with_scripts(lambda: self._record(visitor_id, events, now, snapshot))

    def _record(self, visitor_id: str, events: Sequence[Event], now: float, snapshot: Snapshot | None) -> RecordResult:
        keys = visitor_keys(visitor_id)
        # Round trip 1: rate limit, dedup and the prior state (PREPARE_LUA).
        prepare_keys = [keys["ids"], rate_key(visitor_id, int(now // 60)), keys["seen"], keys["p"], f"{keys['w']}:pruned"]
        args = [int(now), self.dedup_seconds, self.rate_limit, 120, *(event.id for event in events)]
        reply = self.client.evalsha(self._shas["prepare"], len(prepare_keys), *prepare_keys, *args)
        if reply[0] == -1:
            return RecordResult(stored=(), duplicates=0, rate_limited=True)
        _, last_seen, session_start, pruned_hour, marks = reply
        fresh = [event for event, is_new in zip(events, marks, strict=True) if is_new]
        if fresh:
            prior = PriorState(last_seen=_float(last_seen), session_start=_float(session_start))
            self._write(visitor_id, keys, fresh, delta_for(fresh, prior, self.session_gap), snapshot, now)
            if pruned_hour != str(hour_bucket(now)):
                self._prune_buckets(keys["w"], now)
        return RecordResult(stored=tuple(fresh), duplicates=len(events) - len(fresh))

    def _write(self, visitor_id: str, keys: dict[str, str], events: list[Event], delta: ProfileDelta, snapshot: Snapshot | None, now: float) -> None:
        """Round trip 2: every change of the delta, the snapshot, and the stream entry."""
        pipe = self.client.pipeline(transaction=False)
        if snapshot is not None:
            _queue_snapshot(pipe, visitor_id, keys, snapshot, now)
        increments: dict[str, dict[str, float]] = {suffix: {} for suffix in ("w", "t", "p", "cart", "dwell")}
        _count(increments, delta)
        _queue_session(pipe, keys, delta, increments["p"])
        _queue_cart_and_purchases(pipe, keys, delta, increments)
        _queue_recent(pipe, keys, delta)
        for suffix, fields in increments.items():
            if fields:
                mode = "float" if suffix == "dwell" else "int"
                flat = [part for name, amount in fields.items() for part in (name, amount)]
                pipe.evalsha(self._shas["increment"], 1, keys[suffix], mode, *flat)
        pipe.evalsha(self._shas["expire"], len(keys), *keys.values(), self.retention_seconds)
        pipe.xadd(STREAM_KEY, encode_batch(visitor_id, events), maxlen=self.stream_maxlen, approximate=True)
        pipe.execute()

    def recent_visitors(self, since: float, limit: int) -> list[str]:
        return self.client.zrevrangebyscore(RECENT_KEY, "+inf", since, start=0, num=limit)

    def segment_sizes(self, slug: str, days: int, now: float) -> list[tuple[int, int]]:
        today = int(now // 86400)
        span = range(today - days + 1, today + 1)
        pipe = self.client.pipeline(transaction=False)
        for day in span:
            pipe.pfcount(segment_key(slug, day))
        return list(zip(span, pipe.execute(), strict=True))

    def _prune_buckets(self, bucket_key: str, now: float) -> None:
        """Drop buckets that fell out of their window: once per visitor per hour (the marker holding
        the last pruned hour is read in the dedup round trip), so it costs one extra trip per hour."""
        hour = hour_bucket(now)
        self.client.set(f"{bucket_key}:pruned", hour, ex=self.retention_seconds)
        oldest_hour, oldest_day = hour - HOURLY_HOURS, (hour - MAX_WINDOW_HOURS) // 24
        stale = [name for name in self.client.hkeys(bucket_key) if _is_stale(name, oldest_hour, oldest_day)]
        if stale:
            self.client.hdel(bucket_key, *stale)

    def merge(self, source_id: str, target_id: str, now: float) -> None:
        if source_id == target_id:
            return
        source, target = visitor_keys(source_id), visitor_keys(target_id)
        if not self.client.exists(*source.values()):
            return
        dumped = self._read_raw(source)
        pipe = self.client.pipeline(transaction=False)
        _queue_merge(pipe, target, dumped)
        for key in target.values():
            pipe.expire(key, self.retention_seconds)
        pipe.delete(*source.values())
        pipe.execute()

    def _read_raw(self, keys: dict[str, str]) -> dict[str, Any]:
        pipe = self.client.pipeline(transaction=False)
        for suffix in ("p", "w", "t", "cart", "dwell", "votes", "ids"):
            pipe.hgetall(keys[suffix])
        pipe.zmscore(keys["seen"], ["first", "last"])
        for suffix in ("items", "search", "sess"):
            pipe.lrange(keys[suffix], 0, -1)
        names = ("p", "w", "t", "cart", "dwell", "votes", "ids", "seen", "items", "search", "sess")
        return dict(zip(names, pipe.execute(), strict=True))

    def erase(self, visitor_id: str) -> None:
        keys = visitor_keys(visitor_id)
        rate_keys = list(self.client.scan_iter(match=f"{KEY_PREFIX}{{{visitor_id}}}:rate:*", count=100))
        self.client.delete(*keys.values(), f"{keys['w']}:pruned", *rate_keys)

    def export(self, visitor_id: str, now: float) -> dict[str, Any]:
        keys = visitor_keys(visitor_id)
        return {
            "profile": profile_to_json(self.get(visitor_id, now)),
            "counters": {name: int(value) for name, value in self.client.hgetall(keys["w"]).items()},
        }

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False


def _queue_snapshot(pipe, visitor_id: str, keys: dict[str, str], snapshot: Snapshot, now: float) -> None:
    known = {name: value for name, value in (("last_device", snapshot.device), ("last_country", snapshot.country)) if value}
    if known:
        pipe.hset(keys["p"], mapping=known)
    pipe.zadd(RECENT_KEY, {visitor_id: now})
    pipe.zremrangebyscore(RECENT_KEY, "-inf", now - RECENT_KEEP_SECONDS)
    day = int(now // 86400)
    for slug in snapshot.segments:
        pipe.pfadd(segment_key(slug, day), visitor_id)
        pipe.expire(segment_key(slug, day), SEGMENT_DAYS_KEPT * 86400)


def _count(increments: dict[str, dict[str, float]], delta: ProfileDelta) -> None:
    """The delta's integer counters, grouped by the hash they live in."""
    buckets = increments["w"]
    for (counter, hour), count in delta.buckets.items():
        buckets[f"{counter}|h{hour}"] = count
        day = f"{counter}|d{hour // 24}"
        buckets[day] = buckets.get(day, 0) + count
    increments["t"].update({f"e:{kind}": n for kind, n in delta.event_counts.items()})
    increments["t"].update({f"c:{category}": n for category, n in delta.category_views.items()})
    if delta.page_views:
        increments["p"]["page_views"] = delta.page_views


def _queue_session(pipe, keys: dict[str, str], delta: ProfileDelta, scalars: dict[str, float]) -> None:
    pipe.zadd(keys["seen"], {"first": delta.first_ts}, lt=True)
    pipe.zadd(keys["seen"], {"last": delta.last_ts}, gt=True)
    session = delta.session
    if session.starts:
        scalars["sessions"] = len(session.starts)
        pipe.hset(keys["p"], mapping={
            "session_start": session.starts[-1],
            "session_content_views": session.content_views,
            "session_converted": int(session.converted),
        })
        pipe.lpush(keys["sess"], *session.starts)
        pipe.ltrim(keys["sess"], 0, RECENT_SESSIONS - 1)
    else:
        if session.content_views:
            scalars["session_content_views"] = session.content_views
        if session.converted:
            pipe.hset(keys["p"], "session_converted", 1)


def _queue_cart_and_purchases(pipe, keys: dict[str, str], delta: ProfileDelta, increments: dict[str, dict[str, float]]) -> None:
    cart, scalars = delta.cart, increments["p"]
    # Queued before the increments, which run after the other commands of the pipeline.
    if cart.reset:
        pipe.delete(keys["cart"])
    if cart.cleared:
        pipe.hdel(keys["cart"], *cart.cleared)
    increments["cart"].update(cart.changes)
    if cart.updated_at is not None:
        pipe.hset(keys["p"], "cart_updated_at", cart.updated_at)
    if delta.purchases:
        scalars["purchases"] = delta.purchases
        pipe.hincrbyfloat(keys["p"], "ltv", delta.revenue)
        pipe.hset(keys["p"], "last_purchase_at", delta.last_purchase_at)
    for category, (seconds, count) in delta.dwell.items():
        increments["dwell"][f"{category}|s"] = seconds
        increments["dwell"][f"{category}|n"] = count
    if delta.scroll[1]:
        scalars["scroll_sum"], scalars["scroll_n"] = delta.scroll
    if delta.votes:
        pipe.hset(keys["votes"], mapping=delta.votes)


def _queue_recent(pipe, keys: dict[str, str], delta: ProfileDelta) -> None:
    if delta.items:
        pipe.lpush(keys["items"], *[f"{item}@{ts}" for item, ts in delta.items])
        pipe.ltrim(keys["items"], 0, RECENT_ITEMS - 1)
    if delta.searches:
        pipe.lpush(keys["search"], *delta.searches)
        pipe.ltrim(keys["search"], 0, RECENT_SEARCHES - 1)


def _queue_merge(pipe, target: dict[str, str], raw: dict[str, Any]) -> None:
    """Sum the source's counters into the target (once: the source is deleted in the same pipeline)."""
    for suffix in ("w", "t", "cart"):
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
    for suffix, cap in (("items", RECENT_ITEMS), ("search", RECENT_SEARCHES), ("sess", RECENT_SESSIONS)):
        if raw[suffix]:
            pipe.rpush(target[suffix], *raw[suffix])
            pipe.ltrim(target[suffix], 0, cap - 1)


def _parse_profile(visitor_id: str, replies: list[Any], windows: tuple[Window, ...]) -> Profile:
    scalars, seen, totals, cart, items, searches, sessions, dwell, votes, window_counts, model = replies
    scroll = (int(scalars.get("scroll_sum", 0)), int(scalars.get("scroll_n", 0)))
    return Profile(
        visitor_id=visitor_id,
        first_seen=seen[0],
        last_seen=seen[1],
        page_views=int(scalars.get("page_views", 0)),
        sessions=int(scalars.get("sessions", 0)),
        session_start=_float(scalars.get("session_start")),
        session_starts=tuple(sorted((float(s) for s in sessions), reverse=True)),
        session_content_views=int(scalars.get("session_content_views", 0)),
        session_converted=scalars.get("session_converted") == "1",
        event_counts={name[2:]: int(v) for name, v in totals.items() if name.startswith("e:")},
        category_views={name[2:]: int(v) for name, v in totals.items() if name.startswith("c:")},
        cart={item: int(q) for item, q in cart.items() if int(q) > 0},
        cart_updated_at=_float(scalars.get("cart_updated_at")),
        purchases=int(scalars.get("purchases", 0)),
        lifetime_value=float(scalars.get("ltv", 0.0)),
        last_purchase_at=_float(scalars.get("last_purchase_at")),
        recent_items=tuple(sorted((_item(entry) for entry in items), key=lambda pair: -pair[1])),
        recent_searches=tuple(searches),
        dwell=_dwell(dwell),
        scroll=scroll,
        down_votes=frozenset(item for item, vote in votes.items() if vote == "down"),
        last_device=scalars.get("last_device"),
        last_country=scalars.get("last_country"),
        persona=model.get("persona"),
        scores={name[6:]: float(v) for name, v in model.items() if name.startswith("score:")},
        preferences=tuple(filter(None, model.get("preferences", "").split(","))),
        windows=dict(zip(_longest_first(windows), (int(n) for n in window_counts), strict=True)),
    )


def _longest_first(windows: tuple[Window, ...]) -> list[Window]:
    """The order the windows script needs (see WINDOWS_LUA); replies come back in this order."""
    return sorted(windows, key=lambda w: -w.hours)


def _dwell(raw: dict[str, str]) -> dict[str, tuple[float, int]]:
    categories = {name.rpartition("|")[0] for name in raw}
    return {c: (float(raw.get(f"{c}|s", 0.0)), int(raw.get(f"{c}|n", 0))) for c in categories}


def _item(entry: str) -> tuple[str, float]:
    item, _, ts = entry.rpartition("@")
    return item, float(ts)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _is_stale(name: str, oldest_hour: int, oldest_day: int) -> bool:
    bucket = name.rpartition("|")[2]
    number = int(bucket[1:])
    return number < oldest_hour if bucket[0] == "h" else number < oldest_day
