"""Trigger evaluation in the stream workers (issue 20 item 1); never on the request path.

Each worker turn:
- `observe(client, entries, now)`, after the batch's events are stored and scored: state triggers
  (segment entry and exit, score above a threshold, loyalty milestones) compare each known
  visitor's profile with the trigger's state at the previous evaluation (`tl:v1:{vid}:act`, a
  hash of trigger id -> 0/1: the profile as it stood before this batch), and schedule the checks
  of cart and browse abandonment (`tl:v1:act-due`: "trigger|visitor|item" -> due time);
- `fire_due(client, now)`: the checks that came due, against the profile as it is then;
- `catalog_turn(client, now)`: products back in stock or cheaper (tailored.activation.catalog),
  for the known visitors who viewed them.

Only visitors who granted marketing and are known (KnownVisitor) are evaluated. A firing passes
the trigger's extra condition and its per-visitor cool-down, then becomes one ActivationSend,
keyed by what caused it (tailored.activation.sending); the state is written after, so a worker
that dies in between evaluates the batch again and finds the send already there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Max

from tailored import conf
from tailored.core import activation as core
from tailored.core.rules import compile_rule
from tailored.core.types import Context, Profile, Window
from tailored.events.schema import EVENT_TYPES
from tailored.segment_insights import last_known_context

from . import payloads, sending
from .destinations import kind_of
from .models import ActivationSend, KnownVisitor, Trigger

logger = logging.getLogger(__name__)

DUE_KEY = "tl:v1:act-due"
DUE_PER_TURN = 100
DUE_LEASE_SECONDS = 300
BROWSE_WINDOW_HOURS = 7 * 24


def state_key(visitor_id: str) -> str:
    # The visitor's hash tag: their keys share a slot on Redis Cluster.
    return f"tl:v1:{{{visitor_id}}}:act"


@dataclass(frozen=True)
class Loaded:
    spec: core.TriggerSpec
    row: Trigger

    @property
    def windows(self) -> frozenset[Window]:
        rules = [rule for rule in (self.spec.segment, self.spec.condition) if rule is not None]
        return frozenset().union(*(rule.windows for rule in rules)) if rules else frozenset()


def spec_of(row: Trigger) -> core.TriggerSpec:
    quiet = None
    if row.quiet_start is not None and row.quiet_end is not None:
        quiet = core.QuietHours(row.quiet_start.hour * 60 + row.quiet_start.minute, row.quiet_end.hour * 60 + row.quiet_end.minute)
    return core.TriggerSpec(
        id=row.pk,
        kind=row.kind,
        params=dict(row.params or {}),
        cooldown_seconds=row.cooldown_hours * 3600.0,
        enabled_since=row.updated_at.timestamp(),
        segment=row.segment.compiled() if row.segment_id else None,
        condition=compile_rule(row.condition, known_events=EVENT_TYPES) if row.condition else None,
        quiet=quiet,
    )


class TriggerCache:
    """Enabled triggers, compiled once and re-read when the table changes (as segments are)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: tuple[Loaded, ...] = ()
        self._signature: tuple | None = None
        self._checked_at = float("-inf")

    def current(self) -> tuple[Loaded, ...]:
        now = time.monotonic()
        if now - self._checked_at < conf.get("SEGMENT_REFRESH_SECONDS"):
            return self._loaded
        with self._lock:
            signature = tuple(Trigger.objects.aggregate(n=Count("id"), latest=Max("updated_at")).values())
            if signature != self._signature:
                self._loaded = tuple(_load())
                self._signature = signature
            self._checked_at = now
        return self._loaded

    def invalidate(self) -> None:
        self._checked_at, self._signature = float("-inf"), None


def _load() -> list[Loaded]:
    loaded = []
    for row in Trigger.objects.filter(enabled=True).select_related("segment", "destination"):
        problem = core.trigger_spec_problem(row.kind, row.params or {}, row.segment_id is not None)
        try:
            if problem:
                raise ValueError(problem)
            loaded.append(Loaded(spec_of(row), row))
        except Exception as error:  # one broken trigger (edited behind the form) skips only itself
            logger.warning("trigger %s (%s) skipped: %s", row.pk, row.name, error)
    return loaded


trigger_cache = TriggerCache()


def marketing_visitors(visitor_ids) -> dict[str, KnownVisitor]:
    rows = KnownVisitor.objects.filter(visitor_id__in=list(visitor_ids), marketing=True)
    return {row.visitor_id: row for row in rows}


def site_time(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(settings.TIME_ZONE))


# -- Firing ---------------------------------------------------------------------------------------


def fire(loaded: Loaded, visitor_id: str, profile: Profile, context: Context, known: KnownVisitor,
         cause: str, reason: Mapping[str, Any], now: float) -> int:
    """Queue the send of one firing unless the condition or the cool-down says no; 1 if queued."""
    spec, row = loaded.spec, loaded.row
    if spec.condition is not None and not spec.condition.matches(profile, context, now):
        return 0
    last = (
        ActivationSend.objects.filter(trigger_id=spec.id, visitor_id=visitor_id, test=False)
        .aggregate(last=Max("created_at"))["last"]
    )
    if not core.cooled_down(last.timestamp() if last else None, spec.cooldown_seconds, now):
        return 0
    kind = kind_of(row.destination)
    fields = kind.fields_for(row.destination) if kind is not None else frozenset()
    key = f"{spec.id}:{visitor_id}:{cause}"
    payload = payloads.build(row, fields, visitor_id, key, reason, profile, known, now)
    queued = sending.queue(
        row.destination, visitor_id, key, payload, trigger=row, quiet=spec.quiet,
        now=datetime.fromtimestamp(now, tz=UTC),
    )
    return int(queued is not None)


# -- State triggers and scheduling, per batch -----------------------------------------------------


@dataclass(frozen=True)
class StatePlan:
    """What the state triggers evaluate in a batch: the enabled ones, the batch's known visitors
    who granted marketing, each one's last entry (what a firing is keyed by) and the windowed
    counts the triggers' rules read. The worker reads those profiles once for scoring, insights
    and triggers."""

    triggers: tuple[Loaded, ...]
    known: dict[str, KnownVisitor]
    last_entry: dict[str, str]
    windows: frozenset[Window]


def state_plan(entries: Sequence[Any]) -> StatePlan | None:
    """The batch's StatePlan, or None when no state trigger has anyone to evaluate."""
    state_triggers = tuple(loaded for loaded in trigger_cache.current() if loaded.spec.kind in core.STATE_KINDS)
    entries = _acted_on(entries)
    if not state_triggers or not entries:
        return None
    last_entry = {entry.visitor_id: entry.entry_id for entry in entries}  # stream order: the last wins
    known = marketing_visitors(last_entry)
    if not known:
        return None
    windows = frozenset().union(*(loaded.windows for loaded in state_triggers))
    return StatePlan(state_triggers, known, last_entry, windows)


def _acted_on(entries: Sequence[Any]) -> list[Any]:
    return [entry for entry in entries if entry.events and not entry.analytics_only]


def observe(client, entries: Sequence[Any], now: float | None = None, plan: StatePlan | None = None,
            profiles: Mapping[str, Profile] | None = None) -> int:
    """Evaluate a stored batch (the worker's DecodedEntry list); returns the sends queued. `plan`
    and `profiles` (with its visitors, read with its windows): what the worker prepared."""
    triggers = trigger_cache.current()
    entries = _acted_on(entries)
    if not triggers or not entries:
        return 0
    now = time.time() if now is None else now
    schedule_checks(client, entries, triggers)
    plan = state_plan(entries) if plan is None else plan
    if plan is None:
        return 0
    if profiles is None:
        profiles = conf.get_profile_store().get_many(list(plan.known), now, plan.windows)
    profiles = {visitor_id: profiles[visitor_id] for visitor_id in plan.known}
    states = read_states(client, list(profiles), plan.triggers)
    local, fired, new_states = site_time(now), 0, {}
    for visitor_id, profile in profiles.items():
        context = last_known_context(profile, local)
        new_states[visitor_id] = {}
        for loaded in plan.triggers:
            holds = core.state_now(loaded.spec, profile, context, now)
            if core.state_fires(loaded.spec, states[visitor_id].get(loaded.spec.id), holds, profile):
                reason = state_reason(loaded, profile)
                fired += fire(loaded, visitor_id, profile, context, plan.known[visitor_id], plan.last_entry[visitor_id], reason, now)
            new_states[visitor_id][loaded.spec.id] = holds
    write_states(client, new_states)
    return fired


def state_reason(loaded: Loaded, profile: Profile) -> dict[str, Any]:
    spec = loaded.spec
    if spec.kind in (core.SEGMENT_ENTERED, core.SEGMENT_LEFT):
        return {"segment": loaded.row.segment.slug}
    if spec.kind == core.SCORE_ABOVE:
        name = str(spec.params["score"])
        return {"score": name, "value": profile.scores.get(name), "threshold": spec.params["threshold"]}
    return {"purchases": profile.purchases, "lifetime_value": round(profile.lifetime_value, 2)}


def read_states(client, visitor_ids: list[str], triggers: Sequence[Loaded]) -> dict[str, dict[int, bool]]:
    fields = [str(loaded.spec.id) for loaded in triggers]
    pipe = client.pipeline(transaction=False)
    for visitor_id in visitor_ids:
        pipe.hmget(state_key(visitor_id), fields)
    states = {}
    for visitor_id, values in zip(visitor_ids, pipe.execute(), strict=True):
        states[visitor_id] = {
            loaded.spec.id: value == "1" for loaded, value in zip(triggers, values, strict=True) if value is not None
        }
    return states


def write_states(client, states: Mapping[str, Mapping[int, bool]]) -> None:
    ttl = int(conf.get("RETENTION_DAYS")) * 86400
    pipe = client.pipeline(transaction=False)
    for visitor_id, values in states.items():
        if values:
            pipe.hset(state_key(visitor_id), mapping={str(trigger): int(holds) for trigger, holds in values.items()})
            pipe.expire(state_key(visitor_id), ttl)
    pipe.execute()


def schedule_checks(client, entries: Sequence[Any], triggers: Sequence[Loaded]) -> None:
    """Put (or push back) the abandonment checks this batch calls for: a cart check after each
    add_to_cart, a browse check after each product view; one pipelined round trip."""
    carts = [loaded for loaded in triggers if loaded.spec.kind == core.CART_ABANDONED]
    browses = [loaded for loaded in triggers if loaded.spec.kind == core.BROWSE_ABANDONED]
    due: dict[str, float] = {}
    for entry in entries:
        for event in entry.events:
            if event.type == "add_to_cart":
                for loaded in carts:
                    _later(due, f"{loaded.spec.id}|{entry.visitor_id}|", event.ts + _idle(loaded))
            elif event.type == "page_view" and event.item:
                for loaded in browses:
                    _later(due, f"{loaded.spec.id}|{entry.visitor_id}|{event.item}", event.ts + _idle(loaded))
    if due:
        # GT adds new checks and only ever moves one later: a redelivered older event cannot
        # bring a check forward.
        client.zadd(DUE_KEY, due, gt=True)


def _later(due: dict[str, float], member: str, at: float) -> None:
    due[member] = max(at, due.get(member, at))


def _idle(loaded: Loaded) -> float:
    return float(loaded.spec.params["minutes"]) * 60


# -- Scheduled checks -----------------------------------------------------------------------------


def fire_due(client, now: float | None = None) -> int:
    """Run the abandonment checks that are due; each is taken by one worker (a lease)."""
    from tailored.worker import CLAIM_IF_DUE, RELEASE_IF_LEASED

    now = time.time() if now is None else now
    members = client.zrangebyscore(DUE_KEY, "-inf", now, start=0, num=DUE_PER_TURN)
    if not members:
        return 0
    by_id = {loaded.spec.id: loaded for loaded in trigger_cache.current()}
    claim, release = client.register_script(CLAIM_IF_DUE), client.register_script(RELEASE_IF_LEASED)
    fired = 0
    for member in members:
        lease_until = now + DUE_LEASE_SECONDS
        if not claim(keys=[DUE_KEY], args=[member, now, lease_until]):
            continue  # another worker took it
        trigger_id, visitor_id, item = member.split("|", 2)
        loaded = by_id.get(int(trigger_id)) if trigger_id.isdigit() else None
        if loaded is not None:
            fired += check_due(client, loaded, visitor_id, item, now)
        release(keys=[DUE_KEY], args=[member, lease_until])
    return fired


def check_due(client, loaded: Loaded, visitor_id: str, item: str, now: float) -> int:
    known = marketing_visitors([visitor_id]).get(visitor_id)
    if known is None:
        return 0
    spec, idle = loaded.spec, _idle(loaded)
    hours = int(spec.params.get("within_hours", BROWSE_WINDOW_HOURS))
    view_window = Window(f"page_view|i:{item}", hours)
    windows = loaded.windows | ({view_window} if item else set())
    profile = conf.get_profile_store().get(visitor_id, now, windows)
    context = last_known_context(profile, site_time(now))
    if spec.kind == core.CART_ABANDONED:
        if not core.cart_abandoned(profile, idle, now):
            return 0
        reason = {"cart_updated_at": _iso(profile.cart_updated_at), "idle_minutes": spec.params["minutes"]}
        cause = f"cart:{profile.cart_updated_at:.3f}"
    else:
        views = profile.count_within(view_window)
        if not core.browse_abandoned(profile, item, views, int(spec.params["views"]), idle, now):
            return 0
        reason = {"item": int(item) if item.isdigit() else item, "views": views}
        cause = f"browse:{item}:{profile.last_seen:.3f}"
    return fire(loaded, visitor_id, profile, context, known, cause, reason, now)


def forget(visitor_id: str) -> int:
    """Erasure: the visitor's trigger states and scheduled checks; returns the keys and checks
    removed (0 with the memory store, which keeps neither)."""
    client = getattr(conf.get_profile_store(), "client", None)
    if client is None:
        return 0
    checks = [member for member, _ in client.zscan_iter(DUE_KEY, match=f"*|{visitor_id}|*")]
    pipe = client.pipeline(transaction=False)
    pipe.delete(state_key(visitor_id))
    if checks:
        pipe.zrem(DUE_KEY, *checks)
    return sum(pipe.execute())


def export(visitor_id: str) -> dict[str, list[dict[str, Any]]]:
    """For an export: the visitor's trigger states (whether each trigger's condition held at the
    last evaluation) and scheduled abandonment checks (which trigger, the item, when due, epoch
    seconds); empty with the memory store, which keeps neither."""
    client = getattr(conf.get_profile_store(), "client", None)
    if client is None:
        return {"states": [], "scheduled_checks": []}
    states = client.hgetall(state_key(visitor_id))
    checks = [(member.split("|", 2), due) for member, due in client.zscan_iter(DUE_KEY, match=f"*|{visitor_id}|*")]
    ids = {int(trigger) for trigger in states if trigger.isdigit()} | {int(ref[0]) for ref, _ in checks if ref[0].isdigit()}
    names = dict(Trigger.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}

    def named(trigger: str) -> dict[str, Any]:
        return {"trigger_id": int(trigger) if trigger.isdigit() else trigger, "trigger": names.get(int(trigger)) if trigger.isdigit() else None}

    return {
        "states": [{**named(trigger), "holds": value == "1"} for trigger, value in sorted(states.items())],
        "scheduled_checks": [{**named(trigger), "item": item or None, "due_at": float(due)} for (trigger, _, item), due in checks],
    }


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat() if epoch is not None else None
