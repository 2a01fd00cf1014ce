"""Insights counters: counted by the worker per stream entry, flushed exactly once into rows.

Nothing here runs on the request path: the events API appends a batch to the stream as before,
and the worker, after persisting an entry's events, counts it here. Redis keys share the hash tag
`{ins}` (one slot, so each Lua script touches one slot on Redis Cluster):

    tl:v1:{ins}:adds          list  of JSON blobs [increments, sets], one per chunk of entries counted
                                    (and one of its new unique viewers): increments
                                    "<hour>|<page>|<block>|<variant>|<segments>|<device>|<country>|<stat>"
                                    and "T|<hour>|e" (events) / "T|<hour>|d" (dead letters) -> integer;
                                    sets "<set id>" -> "a,b": the segment sets the fields name by id
    tl:v1:{ins}:taking        the adds list being flushed, its batch id in front
    tl:v1:{ins}:folding       the adds list being added up into one blob (after a failed flush)
    tl:v1:{ins}:hours, :flushing  the hash the counters were added into before the list (still flushed)
    tl:v1:{ins}:done:<entry>  an entry already counted (a day): a redelivered entry counts once
    tl:v1:{ins}:seen:<digest> hash  cell -> when the visitor last saw it, for attribution and unique
                                    viewers; it expires after the attribution window or an hour,
                                    whichever is longer (the digest names nobody)

With EVENT_STREAM_SHARDS = N > 1 (issue 19) the per-visitor counters are split by visitor shard,
`tl:v1:ins:{<shard tag>}:...` (tailored.sharding), the shard of the stream the entry came from:
one cluster node does not take every entry's count. The shards hold disjoint visitors, so the
unique-viewer counts of the shards add up; each shard's adds list is flushed as its own batch.

Stats: i impressions, u unique viewers, c clicks (page views in which the block was clicked), v
view time in ms, ca any-touch and cl last-touch conversions. Segment "" is every visitor; an event
also counts under each segment the visitor is in now (evaluated on their profile with their last
device and country, as live segment counts are). The worker counts an event once, under the
visitor's segment set ("^<set id>": every visitor and each segment of the set); the flush adds it
to each of those rows. The set's members are in the same blob as the fields that name it, so a
flush always takes both together.

Unique viewers are exact, not estimated: an impression makes its visitor a viewer of the cell that
hour when their attribution hash (which the impression updates anyway) says they had not seen the
cell since the hour began. It replaced a HyperLogLog per cell and hour, two more commands and a key
per impression (most of the COUNT script's time). Two edges, both documented in the README: a
visitor counts once per cell and hour under the segment set of their first impression (a segment
they enter later that hour does not count them), and an entry a crashed worker left, counted after
the same visitor's later entry of a later hour, does not count its viewer again.

Attribution: a goal event (INSIGHTS_GOALS) counts one any-touch conversion for every cell the
visitor saw within INSIGHTS_ATTRIBUTION_MINUTES before it, and one last-touch conversion for the
cell seen last. Flush: the experiments' pattern (rename, batch id, one transaction, then delete),
on a list of blobs that the flush adds up in Python, where a sum costs far less than a HINCRBY in
Redis (issue 17 item 8).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from tailored import conf, faults, json_out
from tailored.core.segments import matching_segments
from tailored.core.types import Event, Profile
from tailored.experiments.counting import DROP_IF_BATCH as DROP
from tailored.experiments.counting import TAKE, Every
from tailored.experiments.models import FlushBatch
from tailored.models import InsightDay, InsightHour, TrafficHour
from tailored.sharding import shard_of, shard_tag

logger = logging.getLogger(__name__)

PREFIX = "tl:v1:{ins}:"
ADDS, TAKING, FOLDING = "adds", "taking", "folding"  # a shard's key names after its prefix
ADDS_KEY, TAKING_KEY = PREFIX + ADDS, PREFIX + TAKING
# The hash that held the counters before the adds list: an upgraded site's last counts in it are
# still flushed (`_take_hours`); nothing writes it any more.
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

# One call counts a chunk of a shard's entries. KEYS[1]: the shard's adds list; KEYS[2i], KEYS[2i+1]:
# entry i's done mark and its visitor's attribution hash. ARGV[3]: [seen, ...], one per entry, seen:
# cell -> [when last seen, hour start, its viewers field, ...] (an entry rarely spans two hours).
# ARGV[4]: the chunk's increments, added up by the worker, as one JSON blob, which the script appends
# to the list without reading it: the flush adds the blobs up in Python. Redis no longer runs a
# HINCRBY per counter field (most fields of a chunk are distinct: about two an event) nor decodes
# the field names; that was about half of counting's cost (issue 17 item 8). The chunk counts only whole:
# when an entry's done mark exists (counted before, redelivered after a crash) the script writes
# nothing and returns the 1-based positions of those entries, and the worker sends the rest again
# without them. A cell's viewers field of an hour goes up by one when the visitor's hash had not
# seen the cell since that hour began; the hash keeps the latest time (an older entry counted late
# does not move it back); those increments follow as one more blob, encoded by the script.
# ARGV[2]: the hash's lifetime.
COUNT = """
local seen_all, repeats, marked = cjson.decode(ARGV[3]), {}, {}
for i = 1, #seen_all do
    if redis.call('SET', KEYS[2 * i], '1', 'NX', 'EX', ARGV[1]) then marked[#marked + 1] = KEYS[2 * i]
    else repeats[#repeats + 1] = i end
end
if #repeats > 0 then
    if #marked > 0 then redis.call('DEL', unpack(marked)) end
    return repeats
end
local viewers, any = {}, false
for i, seen in ipairs(seen_all) do
    local cells, n = {}, 0
    for cell in pairs(seen) do n = n + 1; cells[n] = cell end
    if n > 0 then
        local seen_key, newer, m = KEYS[2 * i + 1], {}, 0
        local befores = redis.call('HMGET', seen_key, unpack(cells))
        for k = 1, n do
            local views, before = seen[cells[k]], tonumber(befores[k] or 0)
            for j = 2, #views, 2 do
                if before < views[j] then viewers[views[j + 1]] = (viewers[views[j + 1]] or 0) + 1; any = true end
            end
            if tonumber(views[1]) > before then newer[m + 1] = cells[k]; newer[m + 2] = views[1]; m = m + 2 end
        end
        if m > 0 then redis.call('HSET', seen_key, unpack(newer)) end
        redis.call('EXPIRE', seen_key, ARGV[2])
    end
end
redis.call('RPUSH', KEYS[1], ARGV[4])
if any then redis.call('RPUSH', KEYS[1], cjson.encode({viewers})) end
return repeats
"""
# Entries per COUNT call: a call blocks Redis while it runs (a few thousand commands at most).
COUNT_CHUNK = 50


@dataclass(frozen=True, slots=True)
class Dims:
    """Where a visitor's events count: their device class, country and segments."""

    device: str = ""
    country: str = ""
    segments: tuple[str, ...] = ()

    def row(self) -> str:
        """The one counter row an event of this visitor adds to: every visitor ("") and, named by
        its set id ("^<id>"), each of their segments; the flush spreads it (`group`)."""
        segments = SET_ID + set_id(self.segments) if self.segments else ""
        return f"{segments}|{self.device}|{self.country}"


NOWHERE = Dims()  # a visitor counting reads nothing of (no decision, no goal in their entry)


# A segment part starting with "^" names a segment set by its id: its counts go to every visitor's
# row and to each of the set's segments (the "S|<id>" field of the same batch lists them). One
# field per event and stat instead of one per segment the visitor is in: the demo's visitors are in
# about six, and the fields, their JSON and the HyperLogLogs were most of counting's cost. The id
# instead of the slugs themselves ("~a,b", which fields written before it still hold and the flush
# still reads): the bench's fields are about 74 characters instead of about 150, which the script
# decodes, Redis hashes and the flush splits. A part with neither is one row's own.
SET_ID, SEGMENT_SET, SET_FIELD = "^", "~", "S|"


@lru_cache(maxsize=4096)
def set_id(segments: tuple[str, ...]) -> str:
    """A short name of a segment set (8 characters of its digest; neither "|" nor "," in them)."""
    return base64.urlsafe_b64encode(hashlib.blake2b(",".join(segments).encode(), digest_size=6).digest()).decode()


def rows_of(segment_part: str, sets: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The rows a counter's segment part adds to. `sets`: set id -> "a,b", as taken with the counts."""
    if segment_part.startswith(SET_ID):
        members = (sets or {}).get(segment_part[len(SET_ID) :])
        if members is None:  # never written without its set (one call): lost, so counted for all only
            logger.warning("insight counts name an unknown segment set %s: counted for every visitor only", segment_part)
            return ("",)
        return ("", *members.split(","))
    if segment_part.startswith(SEGMENT_SET):
        return ("", *segment_part[len(SEGMENT_SET) :].split(","))
    return (segment_part,)


@dataclass
class EntryCounts:
    """What one stream entry adds: counter increments, and the cells the visitor saw (for their
    unique-viewer counts and the attribution of their later goals)."""

    increments: dict[str, int] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # cell -> the entry's last impression of it
    viewers: dict[str, dict[int, str]] = field(default_factory=dict)  # cell -> {hour start: its "u" field}


def _clean(value: Any) -> str:
    # "|" separates the counter field's parts; keys came through the schema (at most 64 characters).
    return str(value or "").replace("|", "/")[:64]


def cell_of(attrs: Mapping[str, Any]) -> str:
    """"<page>|<block>|<variant>" of an event's decision; an experiment block's variant is its arm."""
    page = attrs.get("page")  # the schema makes page an int, block, variant and arm strings
    return _cell(page if isinstance(page, int) else 0, attrs.get("block"), attrs.get("variant") or attrs.get("arm"))


@lru_cache(maxsize=4096, typed=True)  # typed: a page True is not page 1
def _cell(page: int, block: Any, variant: Any) -> str:
    # A site has a few hundred cells: each is cleaned and written out once, not once per event.
    return f"{page}|{_clean(block)}|{_clean(variant)}"


def digest(visitor_id: str) -> str:
    return hashlib.sha256(f"tailored-insights:{visitor_id}".encode()).hexdigest()[:32]


def counts_of(
    events: Iterable[Event], dims: Dims, seen: dict[str, float], goals: frozenset[str], window: float,
) -> EntryCounts:
    """An entry's counts, its events in time order. `seen` (cell -> last seen) is the visitor's
    attribution state before the entry, when they have a goal in it; impressions in the entry
    update it as they go."""
    counts, row = EntryCounts(), dims.row()
    increments, viewers = counts.increments, counts.viewers
    heads: dict[tuple[int, str], str] = {}  # (hour, cell) -> "<hour>|<cell>|<row>", written once
    for event in sorted(events, key=_time):
        hour = int(event.ts // 3600)
        total = f"T|{hour}|e"
        increments[total] = increments.get(total, 0) + 1
        attrs = event.attrs
        if event.type in DECIDED and attrs.get("block"):
            cell = cell_of(attrs)
            name = heads.get((hour, cell))
            if name is None:
                name = heads[hour, cell] = f"{hour}|{cell}|{row}"
            if event.type == "impression":
                _bump(increments, name + "|i", 1)
                _bump(increments, name + "|v", int(float(attrs.get("seconds") or 0) * 1000))
                viewers.setdefault(cell, {}).setdefault(hour * 3600, name + "|u")
                counts.seen[cell] = event.ts  # the last, in time order
                if event.ts >= seen.get(cell, 0):
                    seen[cell] = event.ts
            else:
                _bump(increments, name + "|c", 1)
        if event.type in goals:
            _attribute(counts, event, row, seen, window)
    return counts


def _bump(increments: dict[str, int], name: str, amount: int) -> None:
    increments[name] = increments.get(name, 0) + amount


DECIDED = frozenset({"impression", "click"})


def _time(event: Event) -> float:
    return event.ts


def _attribute(counts: EntryCounts, event: Event, row: str, seen: Mapping[str, float], window: float) -> None:
    touched = {cell: at for cell, at in seen.items() if event.ts - window <= at <= event.ts + CLOCK_SKEW_SECONDS}
    if not touched:
        return
    hour, last = int(event.ts // 3600), max(touched, key=touched.__getitem__)
    for cell in touched:
        _bump(counts.increments, f"{hour}|{cell}|{row}|ca", 1)
        if cell == last:
            _bump(counts.increments, f"{hour}|{cell}|{row}|cl", 1)


def profile_needs(entries: Sequence[Any]) -> tuple[set[str], frozenset]:
    """Whose profiles counting these entries reads, and the windowed counts the segments ask for:
    the visitors with an impression, a click or a goal (the worker reads them once for scoring,
    counting and triggers)."""
    if not conf.get("INSIGHTS_ENABLED"):
        return set(), frozenset()
    from tailored.segments import segment_cache  # reads Wagtail's models at import time

    goals = frozenset(conf.get("INSIGHTS_GOALS"))
    return {e.visitor_id for e in entries if any(_counts_for(event, goals) for event in e.events)}, segment_cache.current()[1]


def visitor_dims(visitor_ids: Sequence[str], now: float, profiles: Mapping[str, Profile] | None = None) -> dict[str, Dims]:
    """Each visitor's device, country and segments now, from their profile: `profiles` when the
    worker read them already (with the segments' windows), else one batched read."""
    if not visitor_ids:
        return {}
    # Imported here: both read Wagtail's models (reference index, segments) at import time.
    from tailored.segment_insights import last_known_context
    from tailored.segments import segment_cache

    segment_set, windows = segment_cache.current()
    if profiles is None:
        profiles = conf.get_profile_store().get_many(visitor_ids, now, windows)
    site_time = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(settings.TIME_ZONE))
    definitions, dims = segment_set.definitions, {}
    for visitor_id in visitor_ids:
        profile = profiles[visitor_id]
        segments = matching_segments(definitions, profile, last_known_context(profile, site_time), now) if definitions else ()
        dims[visitor_id] = Dims(_clean(profile.last_device)[:16], _clean(profile.last_country)[:2], tuple(sorted(segments)))
    return dims


def count_entries(
    client: Any, entries: Sequence[Any], dead_letters: int = 0, now: float | None = None, profiles: Mapping[str, Profile] | None = None,
) -> int:
    """Count the stored entries (the worker's DecodedEntry: entry_id, visitor_id, events) into the
    hourly counters, each entry at most once however often it is delivered. `profiles`: the
    batch's profiles as the worker read them at `now` (`profile_needs`), else they are read here.
    Returns how many entries were counted now (0 for repeats)."""
    now = time.time() if now is None else now
    if not conf.get("INSIGHTS_ENABLED") or not (entries or dead_letters):
        return 0
    goals = frozenset(conf.get("INSIGHTS_GOALS"))
    window = float(conf.get("INSIGHTS_ATTRIBUTION_MINUTES")) * 60
    relevant = {e.visitor_id for e in entries if any(_counts_for(event, goals) for event in e.events)}
    dims = visitor_dims(sorted(relevant), now, profiles)
    converting = {e.visitor_id for e in entries if any(event.type in goals for event in e.events)}
    seen = _seen_before(client, sorted(converting))
    calls: dict[str, Call] = {}  # shard prefix -> its call
    for entry in entries:
        state = seen.setdefault(entry.visitor_id, {})
        # The visitor's shard, which is also the stream shard the entry came from: its entry ids
        # are unique there, so the "done" marks of two shards never meet.
        prefix = visitor_prefix(entry.visitor_id)
        visitor = dims.get(entry.visitor_id, NOWHERE)
        counts = counts_of(entry.events, visitor, state, goals, window)
        call = calls.get(prefix)
        if call is None:
            call = calls[prefix] = Call(prefix + ADDS)
        done_key, seen_key = f"{prefix}done:{entry.entry_id}", f"{prefix}seen:{digest(entry.visitor_id)}"
        call.entries.append(Counted(done_key, seen_key, counts.increments, _seen_payload(counts)))
        if visitor.segments:
            call.sets[set_id(visitor.segments)] = ",".join(visitor.segments)
    dead = (shard_prefixes()[0] + ADDS, {f"T|{int(now // 3600)}|d": dead_letters}) if dead_letters else None
    # The attribution hash lives the window, and at least the hour its unique viewers are counted in.
    return _run_counts(client, calls, int(max(window, 3600) + CLOCK_SKEW_SECONDS), dead)


def forget(visitor_id: str) -> int:
    """Erasure: the visitor's attribution hash goes (the counts stay: they hold no id)."""
    client = getattr(conf.get_profile_store(), "client", None)
    return int(client.delete(f"{visitor_prefix(visitor_id)}seen:{digest(visitor_id)}")) if client is not None else 0


def _counts_for(event: Event, goals: frozenset[str]) -> bool:
    return event.type in goals or (event.type in DECIDED and bool(event.attrs.get("block")))


def _seen_before(client: Any, visitor_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """The cells these visitors saw before this batch (one pipelined read), for attribution."""
    if not visitor_ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for visitor_id in visitor_ids:
        pipe.hgetall(f"{visitor_prefix(visitor_id)}seen:{digest(visitor_id)}")
    return {v: {cell: float(at) for cell, at in raw.items()} for v, raw in zip(visitor_ids, pipe.execute(), strict=True)}


def _seen_payload(counts: EntryCounts) -> dict[str, list[Any]]:
    # JSON in one argument rather than one argument per field: redis-py encodes every argument
    # on its own. An empty table decodes as {} in Lua's cjson, which `pairs` walks as empty.
    return {cell: [repr(at), *(part for hour_field in counts.viewers[cell].items() for part in hour_field)] for cell, at in counts.seen.items()}


class Counted(NamedTuple):
    """One entry as a COUNT call takes it: its done mark, its visitor's attribution hash, its
    counter increments and the cells it saw (`_seen_payload`)."""

    done_key: str
    seen_key: str
    increments: dict[str, int]
    seen: dict[str, list[Any]]


@dataclass
class Call:
    """One shard's COUNT calls: its adds list, its entries, and the segment sets they name (set id -> "a,b")."""

    adds_key: str
    entries: list[Counted] = field(default_factory=list)
    sets: dict[str, str] = field(default_factory=dict)


def _add_into(total: dict[str, int], increments: Mapping[str, int]) -> None:
    for name, amount in increments.items():
        total[name] = total.get(name, 0) + amount


def _run_counts(client: Any, calls: Mapping[str, Call], seen_ttl: int, dead: tuple | None) -> int:
    """Run the COUNT calls, COUNT_CHUNK entries each, and the dead-letter count, in one round trip.
    EVALSHA directly: a registered script on a pipeline costs a SCRIPT EXISTS round trip each
    time. Returns the entries counted."""
    script = client.register_script(COUNT)  # also tells a cluster client the source (redis_guard)
    queued = [(call, call.entries[start : start + COUNT_CHUNK]) for call in calls.values() for start in range(0, len(call.entries), COUNT_CHUNK)]
    pipe = client.pipeline(transaction=False)
    if dead:
        pipe.rpush(dead[0], json_out.dumps([dead[1]]))
    for call, chunk in queued:
        _queue_count(pipe, script.sha, call, chunk, seen_ttl)
    replies = pipe.execute(raise_on_error=False)
    if dead and isinstance(replies[0], Exception):
        raise replies[0]
    replies = replies[1:] if dead else replies
    return sum(_finish_count(client, script.sha, call, chunk, seen_ttl, reply) for (call, chunk), reply in zip(queued, replies, strict=True))


def _finish_count(client: Any, sha: str, call: Call, chunk: list[Counted], seen_ttl: int, reply: Any) -> int:
    """How many entries of a chunk its COUNT call counted, calling again as the reply asks: after
    NOSCRIPT (Redis restarted or flushed: the call ran nothing), and without the entries it names
    as counted before (redelivered: the call wrote nothing)."""
    while True:
        if isinstance(reply, redis.exceptions.NoScriptError):
            client.script_load(COUNT)
        elif isinstance(reply, Exception):
            raise reply
        elif not reply:
            return len(chunk)
        else:
            repeated = {position - 1 for position in reply}
            chunk = [entry for i, entry in enumerate(chunk) if i not in repeated]
            if not chunk:
                return 0
        again = client.pipeline(transaction=False)
        _queue_count(again, sha, call, chunk, seen_ttl)
        reply = again.execute(raise_on_error=False)[0]


def _queue_count(pipe: Any, sha: str, call: Call, chunk: list[Counted], seen_ttl: int) -> None:
    keys = [key for entry in chunk for key in (entry.done_key, entry.seen_key)]
    total: dict[str, int] = {}
    for entry in chunk:
        _add_into(total, entry.increments)
    blob = json_out.dumps([total, call.sets])  # every chunk's sets: a few dozen
    seen = json_out.dumps([entry.seen for entry in chunk])
    pipe.evalsha(sha, 1 + len(keys), call.adds_key, *keys, DONE_SECONDS, seen_ttl, seen, blob)


# -- Flush ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taken:
    batch_id: str
    values: dict[str, int]
    sets: dict[str, str] = field(default_factory=dict)  # set id -> "a,b"


# The flush takes the adds list whole: renamed, with its batch id pushed in front, then read (an
# unfinished batch is read again as it is). KEYS[3], a fold the worker did not finish (it died
# between taking and putting back), goes back onto the list first, unsummed. The fold itself runs
# this script with KEYS[2] = KEYS[3]: its own unfinished fold is restored, then taken anew.
TAKE_ADDS = """
if redis.call('EXISTS', KEYS[3]) == 1 then
    local blobs = redis.call('LRANGE', KEYS[3], 1, -1)
    for i = 1, #blobs, 1000 do redis.call('RPUSH', KEYS[1], unpack(blobs, i, math.min(i + 999, #blobs))) end
    redis.call('DEL', KEYS[3])
end
if redis.call('EXISTS', KEYS[2]) == 0 then
    if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
    redis.call('RENAME', KEYS[1], KEYS[2])
    redis.call('LPUSH', KEYS[2], ARGV[1])
end
return redis.call('LRANGE', KEYS[2], 0, -1)
"""
DROP_ADDS = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# A fold's sum goes back onto the adds list only if the fold is still this worker's (another
# worker's flush or fold may have restored it meanwhile: then the sum is dropped, the blobs are back).
PUT_FOLD = """
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[1] then return 0 end
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""
FOLD_AT = 64  # blobs on a shard's list (a few seconds of a busy worker) before a failed flush folds them


def sum_blobs(blobs: Iterable[str]) -> tuple[dict[str, int], dict[str, str]]:
    """The counter values and segment sets of adds blobs ([increments, sets], sets optional).
    orjson may read them: every number in them is a count this module wrote (orjson reads an
    integer beyond 64 bits as a float, which no count reaches). A blob that is not one (nothing
    here writes such) is logged and skipped: it cannot be counted, and the others still can."""
    values: dict[str, int] = {}
    sets: dict[str, str] = {}
    for blob in blobs:
        try:
            parsed = orjson.loads(blob)
        except orjson.JSONDecodeError:
            parsed = None
        if not (isinstance(parsed, list) and parsed and isinstance(parsed[0], dict)):
            logger.warning("an unreadable insight counts blob was skipped: %.80s", blob)
            continue
        _add_into(values, parsed[0])
        if len(parsed) > 1:
            sets.update(parsed[1])
    return values, sets


def pending(client: Any, prefix: str = PREFIX) -> tuple[dict[str, int], dict[str, str]]:
    """What one shard has counted and not yet flushed (read only: for tests and inspection)."""
    return sum_blobs(client.lrange(prefix + ADDS, 0, -1))


def take(client: Any, prefix: str = PREFIX) -> Taken | None:
    """The counts of one shard (`prefix`) not yet in the database (an unfinished batch first), or None."""
    script = client.register_script(TAKE_ADDS)
    taken = script(keys=[prefix + ADDS, prefix + TAKING, prefix + FOLDING], args=[uuid.uuid4().hex])
    if not taken:
        return None
    batch_id, *blobs = taken
    values, sets = sum_blobs(blobs)
    return Taken(batch_id, values, sets)


def _take_hours(client: Any, prefix: str = PREFIX) -> Taken | None:
    """The counts of the hash that counted before the adds list (an upgraded site's last ones)."""
    flat = client.register_script(TAKE)(keys=[prefix + "hours", prefix + "flushing"], args=[uuid.uuid4().hex])
    raw = dict(zip(flat[::2], flat[1::2], strict=True))
    batch_id = raw.pop("_batch", None)
    if batch_id is None:
        return None
    sets = {name[len(SET_FIELD) :]: raw.pop(name) for name in [name for name in raw if name.startswith(SET_FIELD)]}
    return Taken(batch_id, {name: int(value) for name, value in raw.items()}, sets)


def _drop_hours(client: Any, prefix: str, batch_id: str) -> None:
    client.register_script(DROP)(keys=[prefix + "flushing"], args=[batch_id])


def _drop_adds(client: Any, prefix: str, batch_id: str) -> None:
    client.register_script(DROP_ADDS)(keys=[prefix + TAKING], args=[batch_id])


def fold(client: Any, prefix: str = PREFIX) -> None:
    """Add a shard's adds list up into one blob, in place: while the database is away the list
    would otherwise grow by every chunk counted; folded, it holds one value per counter field, as
    the hash before it did. Exactly once: the list is taken whole and the sum put back by a script
    that checks the fold is still this one."""
    fold_id = uuid.uuid4().hex
    taken = client.register_script(TAKE_ADDS)(keys=[prefix + ADDS, prefix + FOLDING, prefix + FOLDING], args=[fold_id])
    if taken:
        _fold_id, *blobs = taken  # this fold's id: the script restored any older fold first
        summed = json_out.dumps(list(sum_blobs(blobs)))
        client.register_script(PUT_FOLD)(keys=[prefix + ADDS, prefix + FOLDING], args=[fold_id, summed])


def flush(client: Any) -> int:
    """Move the counters into rows exactly once: applied with the batch id in one transaction,
    then forgotten in Redis. A crash between the two leaves the batch, which the next flush
    finds recorded and only forgets. Returns the rows written."""
    started = time.perf_counter()
    written, taken_any = 0, False
    for prefix in shard_prefixes():  # each shard's batch on its own (its own batch id)
        for take_counts, drop in ((_take_hours, _drop_hours), (take, _drop_adds)):
            taken = take_counts(client, prefix)
            if taken is None:
                continue
            taken_any = True
            written += apply(taken.batch_id, taken.values, taken.sets)
            # The crash test kills the worker here: committed, not yet forgotten in Redis.
            faults.crash_point("insights-flush-after-commit")
            drop(client, prefix, taken.batch_id)
    if not taken_any:
        return 0
    from .metrics import note_flush  # the worker's flush time, for /metrics

    note_flush(client, time.perf_counter() - started, written)
    return written


def apply(batch_id: str, values: Mapping[str, int], sets: Mapping[str, str] | None = None) -> int:
    """Add counter values to the hourly, daily and traffic rows in one transaction; 0 when this
    batch was applied before. `sets`: the segment sets the values name by id."""
    cells, traffic = group(values, sets)
    try:
        with transaction.atomic():
            FlushBatch.objects.create(batch=f"ins-{batch_id}"[:64])
            add_counts(cells)
            for hour, stats in traffic.items():
                _add(TrafficHour, {"hour": _moment(hour)}, stats)
    except IntegrityError:
        if FlushBatch.objects.filter(batch=f"ins-{batch_id}"[:64]).exists():
            return 0
        raise
    return len(cells) + len(traffic)


def group(
    values: Mapping[str, int], sets: Mapping[str, str] | None = None,
) -> tuple[dict[tuple, dict[str, int]], dict[int, dict[str, int]]]:
    """Counter fields into rows: (hour, page, block, variant, segment, device, country) -> stats,
    and hour -> {events, dead_letters}. Unreadable fields are skipped. `sets`: set id -> "a,b"."""
    heads, traffic = _heads(values)
    spread = lru_cache(maxsize=4096)(lambda part: rows_of(part, sets))
    cells: dict[tuple, dict[str, int]] = {}
    for (hour, page, block, variant, device, country), by_set in _places(heads).items():
        # A place's segment sets share segments (and every set has every visitor's row ""):
        # each row is added up here, under its segment alone, before it becomes a cell.
        rows: dict[str, int] = {}
        for segment_part, packed in by_set.items():
            for segment in spread(segment_part):
                rows[segment] = rows.get(segment, 0) + packed
        base = (int(hour), int(page), block, variant)
        for segment, packed in rows.items():
            cells[(*base, segment, device, country)] = _unpacked(packed)
    return cells, traffic


# A head's stats are added up packed into one integer, STAT_BITS bits a stat: a head goes to
# every row of its segment set (about five in bench/insights_counting.py), and one integer
# addition per row instead of a dict merge of its two or three stats halved the flush's grouping
# (61 -> 33 ms for 60,000 events, 39,208 fields, 2,448 rows). A field's value is below 2**63
# (the columns are 64-bit integers), so a stat's sum cannot reach the next one's bits.
STAT_BITS = 96
STAT_SHIFTS = {stat: STAT_BITS * n for n, stat in enumerate(STATS)}
STAT_LIMIT, STAT_MASK = 1 << 63, (1 << STAT_BITS) - 1


def _unpacked(packed: int) -> dict[str, int]:
    return {column: (packed >> (STAT_BITS * n)) & STAT_MASK for n, column in enumerate(STATS.values())}


def _heads(values: Mapping[str, int]) -> tuple[dict[str, int], dict[int, dict[str, int]]]:
    """Each field less its stat -> its stats packed; and hour -> {events, dead_letters}."""
    heads: dict[str, int] = {}
    traffic: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for name, value in values.items():
        head, _, stat = name.rpartition("|")
        shift = STAT_SHIFTS.get(stat)
        if shift is not None:
            if isinstance(value, int) and 0 <= value < STAT_LIMIT:  # a count, which fits its column
                heads[head] = heads.get(head, 0) + (value << shift)
            else:
                logger.warning("insight counter %s holds %r, not a count: skipped", name, value)
        elif len(parts := name.split("|")) == 3 and parts[0] == "T" and parts[1].isdigit():
            traffic[int(parts[1])]["events" if stat == "e" else "dead_letters"] += value
    return heads, traffic


def _places(heads: Mapping[str, int]) -> dict[tuple[str, ...], dict[str, int]]:
    """Heads by where they count, (hour, page, block, variant, device, country) -> segment part
    -> stats; heads that are not seven parts with a numeric hour and page are skipped."""
    places: dict[tuple[str, ...], dict[str, int]] = {}
    for head, packed in heads.items():
        parts = head.split("|")
        if len(parts) != 7 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        place = (parts[0], parts[1], parts[2], parts[3], parts[5], parts[6])
        by_set = places.get(place)
        if by_set is None:
            places[place] = {parts[4]: packed}
        else:  # heads are distinct, so a place's segment parts are too
            by_set[parts[4]] = packed
    return places


def add_counts(cells: Mapping[tuple, Mapping[str, int]]) -> None:
    """The cells' counts into their hourly and daily rows (inside the flush's transaction)."""
    days: dict[tuple, Counter] = defaultdict(Counter)
    hours = []
    for (hour, *cell), stats in cells.items():
        moment = _moment(hour)
        hours.append(((moment, *cell), stats))
        days[(moment.date(), *cell)].update(stats)
    if connection.vendor in UPSERT_VENDORS:
        _upsert(InsightHour, "hour", hours)
        _upsert(InsightDay, "day", days.items())
        return
    for (moment, *cell), stats in hours:
        _add(InsightHour, {"hour": moment, **dict(zip(CELL_COLUMNS, cell, strict=True))}, stats)
    for (day, *cell), stats in days.items():
        _add(InsightDay, {"day": day, **dict(zip(CELL_COLUMNS, cell, strict=True))}, stats)


CELL_COLUMNS = ("page_id", "block", "variant", "segment", "device", "country")
# INSERT ... ON CONFLICT DO UPDATE: PostgreSQL, and SQLite from 3.24 (2018).
UPSERT_VENDORS = ("postgresql", "sqlite")


def _upsert(model: Any, moment_column: str, rows: Iterable[tuple[tuple, Mapping[str, int]]]) -> None:
    """Add each row's counts to its row, creating the missing ones: one statement run for every
    row (a flush writes thousands; an UPDATE and maybe an INSERT per row through the ORM took
    seconds). The addition happens in the database, so two flushes at once both count."""
    quote, table = connection.ops.quote_name, connection.ops.quote_name(model._meta.db_table)
    stats = tuple(STATS.values())
    columns = (moment_column, *CELL_COLUMNS, *stats)
    sql = (
        f"INSERT INTO {table} ({', '.join(map(quote, columns))}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(map(quote, (moment_column, *CELL_COLUMNS)))}) DO UPDATE SET "
        + ", ".join(f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in stats)
    )
    # A flush's rows share a few hours (or days): each is prepared for the database once, not
    # once per row (Django's preparation of a datetime was most of building the parameters).
    prepare = lru_cache(maxsize=None)(partial(model._meta.get_field(moment_column).get_db_prep_save, connection=connection))
    params = [(prepare(moment), *cell, *(counts.get(name, 0) for name in stats)) for (moment, *cell), counts in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


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
        fold_long_lists(client)
        return 0


def fold_long_lists(client: Any) -> None:
    """After a failed flush: fold each shard's list that grew past FOLD_AT (a Redis that is away
    too fails here, logged: nothing is lost, the list waits)."""
    for prefix in shard_prefixes():
        try:
            if client.llen(prefix + ADDS) >= FOLD_AT:
                fold(client, prefix)
        except Exception as error:
            logger.warning("insight counts not folded: %s", error)


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
