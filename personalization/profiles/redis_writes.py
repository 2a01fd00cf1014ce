"""A batch's writes to the Redis profile store, as one script call (issue 21 item 7).

On one Redis a batch costs one round trip: WRITE_LUA checks the rate limit and the dedup marks,
reads the profile's last-seen time, picks the batch's session outcome for it (the options come
from `core.counters.session_options`, so Python stays the reference), appends the stream entry,
applies every profile change, sets the marks and updates the shared counts, all or nothing. The
client builds the commands as lists of words itself: redis-py's pipeline was only used to
collect them, and building, then unpacking, its commands was a third of a batch's client time.

On Redis Cluster the stream shard and the visitor live on two nodes, so the entry goes first in
its own trip and the script gets no entry and no shared commands (`tailored.profiles.redis`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tailored import json_out
from tailored.core.counters import (
    RECENT_ITEMS,
    RECENT_SEARCHES,
    RECENT_SESSIONS,
    ProfileDelta,
    SessionDelta,
    SessionOptions,
)
from tailored.core.types import Snapshot, hour_bucket
from tailored.core.windows import HOURLY_HOURS, MAX_WINDOW_HOURS
from tailored.visit_memory import landing_fields

# Adds to time-bucket series ("bucket:count bucket:count ...", oldest first) in one HMGET and one
# HSET for every field a batch touches (in blocks, within Lua's unpack limit). Readers sum every
# pair of a bucket (READ_LUA, _series), so a count may also be appended as a second pair of its
# bucket. That is the common case, and it touches only the series' last pair: the batch's hour
# and day are usually the last ones, so their count is added to the last pair or appended after
# it. A series is rewritten whole (old buckets dropped, pairs of one bucket merged, buckets
# stay text so untouched pairs are copied, never converted) only when its first bucket has left
# its window or it has grown past COMPACT bytes: about once an hour or a day per field, where
# rewriting every field on every batch was most of a batch's time in Redis.
# KEYS[1]: the bucket hash. ARGV: oldest hour kept, oldest day kept, then "g" and per hour the
# batch touched: the hour, its day, how many counters, and (counter, n) pairs, each added to the
# counter's hourly and daily series (a batch's form: the client names the day, so the script
# converts no number to text for it, and a field given one bucket, nearly all, needs no table of
# its own); or "f" and (field, bucket, n) triples (a merge's form).
BUCKETS_LUA = """
local floor = {h = tonumber(ARGV[1]), d = tonumber(ARGV[2])}
local compact = {h = 1200, d = 2000}  -- about twice a full window's pairs (48 hours, 90 days)
-- Per field, in parallel arrays (no table per field): its name, kind ('h' or 'd'), first bucket
-- and count; `several[i]` holds {bucket = n} only for a field given two buckets or more.
local fields, kinds, firsts, counts, several, index = {}, {}, {}, {}, {}, {}
local nfields = 0
local function pend(field, kind, bucket, n)
  local at = index[field]
  if not at then
    nfields = nfields + 1
    index[field], fields[nfields], kinds[nfields], firsts[nfields], counts[nfields] = nfields, field, kind, bucket, n
  elseif not several[at] and firsts[at] == bucket then
    counts[at] = counts[at] + n
  else
    local adds = several[at]
    if not adds then adds = {[firsts[at]] = counts[at] + 0}; several[at] = adds end
    adds[bucket] = (adds[bucket] or 0) + n
  end
end
if ARGV[3] == 'g' then
  local i, nargs = 4, #ARGV
  while i <= nargs do
    local hour, day, stop = ARGV[i], ARGV[i + 1], i + 2 + 2 * ARGV[i + 2]
    for j = i + 3, stop, 2 do
      local counter, n = ARGV[j], ARGV[j + 1]
      pend(counter .. '|h', 'h', hour, n)
      pend(counter .. '|d', 'd', day, n)
    end
    i = stop + 1
  end
else
  for i = 4, #ARGV, 3 do local field = ARGV[i]; pend(field, string.sub(field, -1), ARGV[i + 1], ARGV[i + 2]) end
end
local gmatch, sub, match, find = string.gmatch, string.sub, string.match, string.find

local function appended(raw, adds, oldest)
  local buckets = {}
  for bucket in pairs(adds) do if bucket + 0 >= oldest then buckets[#buckets + 1] = bucket + 0 end end
  table.sort(buckets)
  local tail = find(raw, '[^ ]+$', math.max(1, #raw - 24))
  local last, n = match(raw, '^(%d+):(%d+)$', tail)
  if not last then return nil end
  local head, parts = sub(raw, 1, tail - 1), {}
  for _, bucket in ipairs(buckets) do
    local add = adds[tostring(bucket)]
    if bucket == last + 0 then n = n + add else parts[#parts + 1] = last .. ':' .. n; last, n = bucket, add end
  end
  parts[#parts + 1] = last .. ':' .. n
  return head .. table.concat(parts, ' ')
end

local function rewritten(raw, adds, oldest)
  local sums, order = {}, {}
  local function add(bucket, n)
    bucket = bucket + 0
    if bucket < oldest then return end
    if not sums[bucket] then order[#order + 1] = bucket end
    sums[bucket] = (sums[bucket] or 0) + n
  end
  if raw then for bucket, n in gmatch(raw, '(%d+):(%d+)') do add(bucket, n + 0) end end
  for bucket, n in pairs(adds) do add(bucket, n) end
  table.sort(order)
  local parts = {}
  for i, bucket in ipairs(order) do parts[i] = bucket .. ':' .. sums[bucket] end
  return #parts > 0 and table.concat(parts, ' ') or nil
end

local block, rewrote = 1000, false
for start = 1, nfields, block do
  local stop = math.min(start + block - 1, nfields)
  local raws = redis.call('HMGET', KEYS[1], unpack(fields, start, stop))
  local writes, gone = {}, {}
  for f = start, stop do
    local field, raw, kind, adds = fields[f], raws[f - start + 1], kinds[f], several[f]
    local oldest, bucket, n = floor[kind], firsts[f], counts[f]
    local series = nil
    if adds then
      if raw and #raw < compact[kind] and (tonumber(match(raw, '^(%d+)')) or -1) >= oldest then series = appended(raw, adds, oldest) end
    elseif bucket + 0 >= oldest then
      if not raw then
        series = bucket .. ':' .. n  -- a new series of one bucket, the usual new field
      elseif #raw < compact[kind] and (tonumber(match(raw, '^(%d+)')) or -1) >= oldest then
        -- one bucket, the usual case: its count is added to the last pair or appended after it
        local tail = find(raw, '[^ ]+$', math.max(1, #raw - 24))
        local last, m = match(raw, '^(%d+):(%d+)$', tail)
        if last == bucket then series = sub(raw, 1, tail - 1) .. last .. ':' .. (m + n)
        elseif last then series = raw .. ' ' .. bucket .. ':' .. n end
      end
    end
    if not series then series = rewritten(raw, adds or {[bucket] = n}, oldest); rewrote = true end
    if series then
      writes[#writes + 1] = field
      writes[#writes + 1] = series
    else
      gone[#gone + 1] = field
    end
  end
  if #writes > 0 then redis.call('HSET', KEYS[1], unpack(writes)) end
  if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
end
-- READ_LUA keeps window sums that hold only while series change at their end (see there).
if rewrote then redis.call('HDEL', KEYS[1], '~sums') end
return 1
"""

# One batch, all or nothing. ARGV[1]: the JSON program
#   [ids key, mark value, dedup seconds, ids, commands, session, rate, entry, shared]
# commands and shared: lists of words; "@increment key mode name amount ...", "@buckets key ...",
# "@expire seconds key ..." run the local functions below, anything else is a Redis command.
# session: [] or [seen key, gap, candidates, options (lists of commands)]: the option is the
# number of candidates the profile's last event closes (`candidate - last <= gap`, as
# core.counters.SessionOptions.chosen). rate: [] or [key, limit, charge, seconds]. entry: [] or
# [stream, minid]; the entry's fields and values are ARGV[2] on (outside the JSON: the events'
# own JSON is most of a batch's bytes, and decoding it twice cost the script a fifth of its
# time). erased: [] or [tombstones key, the visitor's digest, since]: the batch of a visitor erased
# at or after `since` (a request that resolved them before their erasure) writes nothing. Returns {-2} (erased),
# {-1} (rate limited: nothing written), {0, ids} (ids a concurrent copy of the batch marked
# first: nothing written but the charge) or {1}.
WRITE_LUA = (
    "local function buckets(KEYS, ARGV)\n" + BUCKETS_LUA + "end\n"
    """
local program = cjson.decode(ARGV[1])
local ids_key, mark, dedup_seconds, ids = program[1], program[2], program[3], program[4]
local commands, session, rate, entry, shared, erased = program[5], program[6], program[7], program[8], program[9], program[10]
local n, block = #ids, 1000
if #erased > 0 and tonumber(redis.call('ZSCORE', erased[1], erased[2]) or '-1') >= tonumber(erased[3]) then return {-2} end
if #rate > 0 and tonumber(redis.call('GET', rate[1]) or '0') + rate[3] > rate[2] then return {-1} end
local function charge()
  if #rate > 0 and rate[3] > 0 then redis.call('INCRBY', rate[1], rate[3]); redis.call('EXPIRE', rate[1], rate[4]) end
end
local taken = {}
for start = 1, n, block do  -- blocks: Lua's unpack has a limit
  local stop = math.min(start + block - 1, n)
  local marks = redis.call('HMGET', ids_key, unpack(ids, start, stop))
  for i = start, stop do if marks[i - start + 1] then taken[#taken + 1] = ids[i] end end
end
if #taken > 0 then charge(); return {0, taken} end
-- The session's commands run first: the profile's last commands renew every key's expiry.
local run = {}
if #session > 0 then
  local last, closed = redis.call('ZSCORE', session[1], 'last'), 0
  if last then
    last = tonumber(last)
    for _, candidate in ipairs(session[3]) do if candidate - last <= session[2] then closed = closed + 1 end end
  end
  for _, command in ipairs(session[4][closed + 1]) do run[#run + 1] = command end
end
for _, command in ipairs(commands) do run[#run + 1] = command end
for _, command in ipairs(shared) do run[#run + 1] = command end
commands = run
-- Every key must have the type its command needs before anything is written: a wrong-type key
-- would fail the script halfway, and Redis does not roll back.
local wants = {HSET = 'hash', HDEL = 'hash', HINCRBY = 'hash', HINCRBYFLOAT = 'hash', ['@increment'] = 'hash',
  ['@buckets'] = 'hash', ZADD = 'zset', ZREMRANGEBYSCORE = 'zset', LPUSH = 'list', LTRIM = 'list', PFADD = 'string'}
local checks = {{ids_key, 'hash'}}
if #entry > 0 then checks[#checks + 1] = {entry[1], 'stream'} end
for _, command in ipairs(commands) do
  local kind = wants[command[1]]
  if kind then checks[#checks + 1] = {command[2], kind} end
end
local checked = {}
for _, check in ipairs(checks) do
  local kind = checked[check[1]] or redis.call('TYPE', check[1])['ok']
  checked[check[1]] = kind
  if kind ~= 'none' and kind ~= check[2] then
    return redis.error_reply('WRONGTYPE ' .. check[1] .. ' holds a ' .. kind .. ', not a ' .. check[2] .. '; nothing was written')
  end
end
if #entry > 0 then redis.call('XADD', entry[1], 'MINID', '~', entry[2], '*', unpack(ARGV, 2)) end
for _, command in ipairs(commands) do
  local name = command[1]
  if name == '@increment' then
    local verb = command[3] == 'float' and 'HINCRBYFLOAT' or 'HINCRBY'
    for i = 4, #command, 2 do redis.call(verb, command[2], command[i], command[i + 1]) end
  elseif name == '@buckets' then
    buckets({command[2]}, {unpack(command, 3)})
  elseif name == '@expire' then
    for i = 3, #command do redis.call('EXPIRE', command[i], command[2]) end
  else
    redis.call(unpack(command))
  end
end
charge()
for start = 1, n, block do
  local marks = {}
  for i = start, math.min(start + block - 1, n) do marks[#marks + 1] = ids[i]; marks[#marks + 1] = mark end
  redis.call('HSET', ids_key, unpack(marks))
end
redis.call('EXPIRE', ids_key, dedup_seconds)
return {1}
"""
)


def word(value: Any) -> str:
    """A command argument as redis-py would send it (floats in full, as repr)."""
    if value.__class__ is str:
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass
class BatchWrites:
    """The commands of one batch, as words: `own` on the visitor's keys, `shared` on the
    shard's (recent visitors, segment counts), and the session options."""

    keys: Mapping[str, str]
    retention_seconds: int
    own: list[list[str]] = field(default_factory=list)
    shared: list[list[str]] = field(default_factory=list)
    session: list[Any] = field(default_factory=list)

    def snapshot(self, visitor_id: str, snapshot: Snapshot, now: float, recent: str, segment_keys: Mapping[str, str], keep_seconds: float) -> None:
        """Who the visitor looked like (last device, country) and their segments today."""
        known = [part for name, value in (("last_device", snapshot.device), ("last_country", snapshot.country)) if value for part in (name, value)]
        if known:
            self.own.append(["HSET", self.keys["p"], *known])
        self.shared.append(["ZADD", recent, repr(float(now)), visitor_id])
        self.shared.append(["ZREMRANGEBYSCORE", recent, "-inf", repr(float(now - keep_seconds))])
        for slug in snapshot.segments:
            self.shared.append(["PFADD", segment_keys[slug], visitor_id])
            self.shared.append(["EXPIRE", segment_keys[slug], str(self.retention_seconds)])

    def profile(self, delta: ProfileDelta, options: SessionOptions, gap: float, now: float) -> None:
        """Every change `delta` makes, with the session's changes left to the script's pick."""
        keys, own = self.keys, self.own
        hour = hour_bucket(now)
        if delta.buckets:
            floors = (str(hour - HOURLY_HOURS + 1), str((hour - MAX_WINDOW_HOURS) // 24 + 1))
            own.append(["@buckets", keys["w"], *floors, "g", *_counter_groups(delta.buckets)])
        own.append(["ZADD", keys["seen"], "LT", repr(delta.first_ts), "first"])
        own.append(["ZADD", keys["seen"], "GT", repr(delta.last_ts), "last"])
        scalars: dict[str, Any] = {}
        _cart_and_purchases(own, keys, delta, scalars)
        _recent(own, keys, delta)
        if delta.page_views:
            scalars["page_views"] = delta.page_views
        totals = {**{f"e:{kind}": n for kind, n in delta.event_counts.items()}, **{f"c:{c}": n for c, n in delta.category_views.items()}}
        dwell = {f"{c}|{part}": value for c, (seconds, count) in delta.dwell.items() for part, value in (("s", seconds), ("n", count))}
        for suffix, fields, mode in (("t", totals, "int"), ("p", scalars, "int"), ("cart", dict(delta.cart.changes), "int"), ("dwell", dwell, "float")):
            if fields:
                own.append(["@increment", keys[suffix], mode, *(word(part) for pair in fields.items() for part in pair)])
        own.append(["@expire", str(self.retention_seconds), *keys.values()])
        self.session = [keys["seen"], gap, list(options.candidates), [_session(keys, option) for option in options.options]]

    def program(
        self, ids: list[str], now: float, dedup_seconds: int, rate: list[Any], entry: list[str], with_shared: bool,
        erased: Sequence[str] = (),
    ) -> bytes:
        return json_out.dumps([
            self.keys["ids"], str(int(now)), dedup_seconds, ids, self.own, self.session, rate, entry,
            self.shared if with_shared else [], list(erased),
        ])


def _session(keys: Mapping[str, str], session: SessionDelta) -> list[list[str]]:
    """The commands of one session outcome."""
    if session.starts:
        fields = {
            "session_start": repr(float(session.starts[-1])),
            "session_content_views": str(session.content_views),
            "session_converted": str(int(session.converted)),
            # A new visit forgets the last one's landing page and parameters (visit_memory).
            **landing_fields(session.landing),
        }
        return [
            ["HINCRBY", keys["p"], "sessions", str(len(session.starts))],
            ["HSET", keys["p"], *(part for pair in fields.items() for part in pair)],
            ["LPUSH", keys["sess"], *(repr(float(start)) for start in session.starts)],
            ["LTRIM", keys["sess"], "0", str(RECENT_SESSIONS - 1)],
        ]
    commands = []
    if session.content_views:
        commands.append(["HINCRBY", keys["p"], "session_content_views", str(session.content_views)])
    if session.converted:
        commands.append(["HSET", keys["p"], "session_converted", "1"])
    return commands


def _cart_and_purchases(own: list[list[str]], keys: Mapping[str, str], delta: ProfileDelta, scalars: dict[str, Any]) -> None:
    cart = delta.cart
    # Before the cart's increments, which come after every other command.
    if cart.reset:
        own.append(["DEL", keys["cart"]])
    if cart.cleared:
        own.append(["HDEL", keys["cart"], *cart.cleared])
    if cart.updated_at is not None:
        own.append(["HSET", keys["p"], "cart_updated_at", repr(float(cart.updated_at))])
    if delta.purchases:
        scalars["purchases"] = delta.purchases
        own.append(["HINCRBYFLOAT", keys["p"], "ltv", repr(float(delta.revenue))])
        own.append(["HSET", keys["p"], "last_purchase_at", repr(float(delta.last_purchase_at))])
    if delta.scroll[1]:
        scalars["scroll_sum"], scalars["scroll_n"] = delta.scroll
    if delta.votes:
        own.append(["HSET", keys["votes"], *(part for pair in delta.votes.items() for part in pair)])


def _recent(own: list[list[str]], keys: Mapping[str, str], delta: ProfileDelta) -> None:
    if delta.items:
        own.append(["LPUSH", keys["items"], *(f"{item}@{ts!r}" for item, ts in delta.items)])
        own.append(["LTRIM", keys["items"], "0", str(RECENT_ITEMS - 1)])
    if delta.searches:
        own.append(["LPUSH", keys["search"], *delta.searches])
        own.append(["LTRIM", keys["search"], "0", str(RECENT_SEARCHES - 1)])


def _counter_groups(buckets: Mapping[tuple[str, int], int]) -> list[str]:
    """Per hour the delta touched: the hour, its day, how many counters, then (counter, n) pairs."""
    hours: dict[int, list[str]] = {}
    for (counter, hour), count in buckets.items():
        pairs = hours.get(hour)
        if pairs is None:
            pairs = hours[hour] = []
        pairs += (counter, str(count))
    return [word for hour, pairs in hours.items() for word in (str(hour), str(hour // 24), str(len(pairs) // 2), *pairs)]
