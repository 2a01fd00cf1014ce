"""The global holdout: measuring what personalization itself is worth (issue 9 item 7).

A configurable share of consenting visitors (`GLOBAL_HOLDOUT_PERCENT`) always sees every
PersonalizedBlock's fallback, whatever the targeting rules or a variants experiment would have
shown. Everyone else is "personalized". Comparing the two groups' conversion rates on each goal
(`GLOBAL_HOLDOUT_GOALS`) is the lift of personalization as a whole (Reports -> Personalization lift).

Who is in it: the pure core's `in_global_holdout` (a hash of the visitor id), so the group is
deterministic and stable across requests, processes and the SSR and GraphQL paths. Only
visitors with an id who consented and are not bots take part; editors' previews build a visitor
without an id, so they are never held out and never counted.

Counting reuses the experiments' unique-visitor counters (Redis or memory, HSETNX exposures,
once-per-goal conversions, crash-safe batches) under the reserved key `HOLDOUT_KEY`, which is
not a slug and so can never be an editor's experiment key; the experiments' flush only reads
keys of `Experiment` rows, so it never takes our counts. `flush` moves them into
`HoldoutCount` rows, exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from django.db.models import F

from tailored import conf, redis_guard
from tailored.core.bucketing import in_global_holdout
from tailored.core.types import Event, Visitor
from tailored.experiments import counting

from .models import HoldoutCount

logger = logging.getLogger(__name__)

# A colon is not allowed in a slug (experiment keys are slugs), so no experiment can share these
# counters. In Redis the keys become `tl:v1:xp:{holdout:global}:…`: the hash tag is the whole
# key, so every key of the holdout stays in one Cluster slot, as the counters' Lua scripts need.
HOLDOUT_KEY = "holdout:global"
HOLDOUT = HoldoutCount.Group.HOLDOUT.value
PERSONALIZED = HoldoutCount.Group.PERSONALIZED.value


def share() -> float:
    """The configured holdout share in [0, 1]; 0 means off."""
    return min(max(float(conf.get("GLOBAL_HOLDOUT_PERCENT") or 0), 0.0), 100.0) / 100


def goals() -> tuple[str, ...]:
    return tuple(conf.get("GLOBAL_HOLDOUT_GOALS") or ())


def _eligible(visitor: Visitor | None) -> bool:
    """The same gate as experiments: an id, consent to personalization, not a bot."""
    return (
        visitor is not None
        and visitor.id is not None
        and visitor.consent.allows_profile
        and visitor.context.device != "bot"
    )


def in_holdout(visitor: Visitor | None) -> bool:
    """Whether this visitor sees fallbacks only. Deterministic: a hash of their id."""
    return in_measurement(visitor) and in_global_holdout(visitor.id, share())


def held_out(visitor: Visitor | None, now: float | None = None) -> bool:
    """For PersonalizedBlock.choose: whether the visitor is held out, counting their exposure
    (once per visitor, in their group) whenever the holdout is on and they take part."""
    if not in_measurement(visitor):
        return False
    held = in_global_holdout(visitor.id, share())
    note_exposure(visitor.id, HOLDOUT if held else PERSONALIZED, time.time() if now is None else now)
    return held


def in_measurement(visitor: Visitor | None) -> bool:
    """The holdout is on and the visitor takes part (in either group)."""
    return share() > 0 and _eligible(visitor)


def note_exposure(visitor_id: str, group: str, now: float) -> bool:
    """Count the visitor once in their group; False when already counted or not counted. A
    counting failure never fails the page: it is logged and the page renders."""
    try:
        backend = counting.counters()
        if counting.exposure_memo.seen(backend, HOLDOUT_KEY, visitor_id):
            return False  # a page has several blocks: one Redis call per visitor per process
        counted = backend.expose(HOLDOUT_KEY, group, visitor_id, now)
        counting.exposure_memo.remember(backend, HOLDOUT_KEY, visitor_id)
        return counted
    except redis_guard.Unavailable:  # Redis skipped (the guard logged it once): uncounted
        return False
    except Exception as error:
        logger.warning("holdout exposure not counted: %s", error)
        return False


def count_conversions(visitor: Visitor, stored: Sequence[Event], now: float | None = None) -> int:
    """For services.record_events: goal events among the stored (never duplicate) events of an
    exposed visitor count once per goal, only if not older than the exposure."""
    wanted = goals()
    if not in_measurement(visitor) or not stored or not wanted:
        return 0
    now = time.time() if now is None else now
    counted = 0
    try:
        backend = counting.counters()
        for event in stored:
            if event.type in wanted:
                counted += backend.convert(HOLDOUT_KEY, event.type, visitor.id, event.ts, now)
    except Exception as error:  # counting must never fail the event request
        logger.warning("holdout conversions not counted: %s", error)
    return counted


def forget_visitor(visitor_id: str) -> None:
    """Erasure: the id leaves the holdout's exposure and conversion sets; the counts stay."""
    backend = counting.counters()
    backend.forget(visitor_id, [(HOLDOUT_KEY, goals())])
    counting.exposure_memo.forget(backend, visitor_id=visitor_id)


def export_visitor(visitor_id: str) -> dict | None:
    """For an export: the visitor's group as their exposure recorded it, when they were exposed,
    and the goals they converted on; None when the holdout holds nothing under the id."""
    held = counting.counters().export(visitor_id, [(HOLDOUT_KEY, goals())]).get(HOLDOUT_KEY)
    if held is None:
        return None
    return {"group": held["arm"], "exposed_at": held.get("exposed_at"), "conversions": held["conversions"]}


# -- Flush ----------------------------------------------------------------------------------------


def flush(backend: counting.Counters | None = None) -> int:
    """Move the counted exposures and conversions into `HoldoutCount` rows; returns rows written
    (exactly once, as the experiments' flush: `counting.flush_key`)."""
    return counting.flush_key(HOLDOUT_KEY, backend or counting.counters(), _add)


def apply_batch(batch: counting.Batch) -> int:
    """Add a batch to the rows; a batch applied before (same id) is skipped and returns 0."""
    return counting.apply_rows(batch, _add)


def _add(hour: int, group: str, goal: str, stats: Mapping[str, int]) -> None:
    where = {"group": group, "goal": goal, "hour": datetime.fromtimestamp(hour * 3600, tz=UTC)}
    visitors, conversions = stats.get("n", 0), stats.get("c", 0)
    updated = HoldoutCount.objects.filter(**where).update(
        visitors=F("visitors") + visitors, conversions=F("conversions") + conversions
    )
    if not updated:  # a concurrent create fails the unique constraint: that batch is retried later
        HoldoutCount.objects.create(**where, visitors=visitors, conversions=conversions)


flush_clock = counting.Every(counting.FLUSH_EVERY_SECONDS)


def flush_due() -> int:
    """For the stream worker's turn: flush at most every FLUSH_EVERY_SECONDS. A failure is
    logged and retried on a later turn (the counts wait in Redis)."""
    if not flush_clock.due():
        return 0
    try:
        return flush()
    except Exception as error:
        logger.warning("holdout counts not flushed yet: %s", error)
        return 0
