"""Erasure and export: what the data-rights endpoints, consent withdrawal and the worker call.

Erasing a visitor removes every trace of the id: profile keys, rate-limit counters, the
recent-visitors and cart-watch memberships, their event-stream entries and dead letters, the
experiments' and the holdout's exposure and conversion memberships, the Insights attribution hash
(the blocks they saw lately), persisted events, webhook
deliveries about them and their CRM traits (the row and the store's copy, issue 20). A tombstone (a digest of the id, kept for the stream's retention)
stops a worker that is behind from storing the visitor's older entries; what it skips is added to
the erasure's audit row. The audit rows name the visitor by that digest only. Aggregate counts
(experiment and holdout tallies, HyperLogLog segment sizes) stay: they hold no id.

With Redis unavailable the erasure is queued in the database (PendingErasure) and completed
when Redis is back."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from tailored import conf, holdout, redis_guard, seen_items
from tailored.activation import identity, traits, triggers
from tailored.core.types import Consent
from tailored.events.stream import erased_digest
from tailored.experiments import services as experiments
from tailored.experiments.counting import Every
from tailored.insights import counting as insights_counting

from .models import DataRightsAudit, PendingErasure, WebhookDelivery
from .models import Event as StoredEvent

logger = logging.getLogger(__name__)


def erase_visitor(visitor_id: str, now: float | None = None, by: str | None = None) -> dict[str, Any]:
    """Erase every trace of the visitor (see the module's docstring); returns what went, by kind,
    as recorded in the audit row (with `by`, the editor who asked, if one did)."""
    detail = _erase_everywhere(visitor_id, now)
    if by is not None:
        detail["by"] = by
    digest = erased_digest(visitor_id)
    DataRightsAudit.objects.filter(visitor_id=visitor_id).update(visitor_id=digest)  # earlier exports
    DataRightsAudit.objects.create(action=DataRightsAudit.Action.ERASE, visitor_id=digest, detail=detail)
    return detail


def erase_again(visitor_id: str) -> dict[str, Any]:
    """What a worker wrote under an id while its erasure ran (the worker's last tombstone check,
    tailored.worker.forget_erased_during): erased as the erasure did, with no second audit row."""
    detail = _erase_everywhere(visitor_id, None)
    logger.info("erased again what a worker wrote while an erasure ran: %s", {k: v for k, v in detail.items() if v})
    return detail


def _erase_everywhere(visitor_id: str, now: float | None) -> dict[str, Any]:
    # The store goes first: its tombstone must exist before the rows are deleted, so a worker
    # committing the visitor's events meanwhile finds it afterwards and deletes them again.
    detail = dict(conf.get_profile_store().erase(visitor_id, time.time() if now is None else now))
    experiments.forget_visitor(visitor_id)  # the id leaves the experiments' sets; counts stay
    holdout.forget_visitor(visitor_id)  # and the global holdout's
    seen_items.forget(visitor_id)  # the ids of what they viewed and bought (issue 22)
    detail["insight_attribution"] = insights_counting.forget(visitor_id)  # the blocks they saw lately
    detail["events"], _ = StoredEvent.objects.filter(visitor_id=visitor_id).delete()
    detail["webhook_deliveries"], _ = WebhookDelivery.objects.filter(payload__visitor_id=visitor_id).delete()
    detail["traits"] = traits.forget(visitor_id)  # the row; the store's copy went with the profile keys
    detail.update(identity.forget(visitor_id))  # who they are for activation, and every send about them
    detail["trigger_states"] = triggers.forget(visitor_id)
    return detail


def note_skipped_by_worker(skipped: Mapping[str, int]) -> None:
    """Add the events a worker did not store, because their visitor was erased, to the erasure's
    audit row (`skipped_by_worker`)."""
    for visitor_id, count in skipped.items():
        with transaction.atomic():
            audit = (
                DataRightsAudit.objects.select_for_update()
                .filter(action=DataRightsAudit.Action.ERASE, visitor_id=erased_digest(visitor_id))
                .first()
            )
            if audit is not None:
                audit.detail["skipped_by_worker"] = audit.detail.get("skipped_by_worker", 0) + count
                audit.save(update_fields=["detail"])


def erase_or_queue(visitor_id: str, by: str | None = None) -> dict[str, Any] | None:
    """Withdrawing consent always works: erase now, or, with Redis unavailable, queue the erasure
    in the database (the caller clears the cookie at once). None when it was queued."""
    if redis_guard.available(getattr(conf.get_profile_store(), "client", None)):
        try:
            return erase_visitor(visitor_id, by=by)
        except redis_guard.OUTAGE as error:
            logger.warning("erasure queued until Redis is back: %s", error)
    queue_erasure(visitor_id)
    return None


def queue_erasure(visitor_id: str) -> None:
    """An erasure the workers complete on their next turn (`complete_erasures_due`): for an id
    nobody holds any more (the anonymous id of a visitor who logged in), off the request."""
    PendingErasure.objects.get_or_create(visitor_id=visitor_id)


def complete_pending_erasures(limit: int = 500) -> int:
    """Erase what was queued while Redis was unavailable; stops at the first outage (the rest
    waits for the next turn). Returns how many were completed."""
    done = 0
    for pending in PendingErasure.objects.all()[:limit]:
        try:
            erase_visitor(pending.visitor_id)
        except redis_guard.OUTAGE as error:
            logger.warning("queued erasures wait for Redis: %s", error)
            break
        pending.delete()
        done += 1
    return done


ERASURES_EVERY_SECONDS = 10.0
_erasure_clock = Every(ERASURES_EVERY_SECONDS)


def complete_erasures_due() -> int:
    """For the stream worker's turn: complete queued erasures at most every few seconds. A
    failure (the database away) is logged and retried on a later turn; the queue keeps them."""
    if not _erasure_clock.due():
        return 0
    try:
        return complete_pending_erasures()
    except Exception as error:
        logger.warning("queued erasures not completed yet: %s", error)
        return 0


def export_visitor(visitor_id: str, consent: Consent | None, by: str | None = None) -> dict[str, Any]:
    """Everything held about the visitor: profile, raw counters, events (stored, waiting to be, or
    dead-lettered), assignments, experiment and holdout exposures and conversions, the items they
    had, the cart-abandonment schedule, the Insights attribution hash, CRM traits and activation
    (identity, sends, trigger states and scheduled checks); audited
    (with `by`, the editor who exported it). `consent` is None when the caller cannot know it (an
    editor's export: the answer lives in the visitor's browser)."""
    now = time.time()
    held = conf.get_profile_store().export(visitor_id, now)
    events = [
        {"id": e.event_id, "type": e.type, "ts": e.ts.isoformat(), "category": e.category, "item": e.item, "url": e.url, "attrs": e.attrs}
        for e in StoredEvent.objects.filter(visitor_id=visitor_id).order_by("ts")
    ]
    detail: dict[str, Any] = {"events": len(events)}
    if by is not None:
        detail["by"] = by
    DataRightsAudit.objects.create(action=DataRightsAudit.Action.EXPORT, visitor_id=visitor_id, detail=detail)
    return {
        "visitor_id": visitor_id,
        "exported_at": now,
        "consent": None if consent is None else {
            "analytics": consent.analytics, "personalization": consent.personalization, "marketing": consent.marketing,
        },
        "profile": held["profile"],
        "counters": held["counters"],
        "events": events,
        # Sent, not stored yet (the worker is behind), or refused by the worker: held all the same.
        "waiting_events": held.get("waiting_events", []),
        "dead_letters": held.get("dead_letters", []),
        "assignments": held.get("assignments") or held["profile"].get("assignments", {}),
        # The experiments' and the holdout's membership sets: exposure (arm or group, when) and conversions.
        "experiments": experiments.export_visitor(visitor_id),
        "holdout": holdout.export_visitor(visitor_id),
        "seen_items": seen_items.history(visitor_id),  # what recommendations no longer offer, with times
        "cart_abandonment_check_at": held.get("cart_abandonment_check_at"),
        "insight_attribution": _insight_attribution(visitor_id),
        "traits": traits.traits_of(visitor_id),  # the record; the profile shows the store's copy
        # Identity and every send (issue 20), trigger states and scheduled checks.
        "activation": {**identity.export(visitor_id), "triggers": triggers.export(visitor_id)},
    }


def _insight_attribution(visitor_id: str) -> list[dict[str, Any]]:
    """The blocks the visitor saw lately (Insights attribution, kept under a digest of the id):
    page, block, variant and when last seen (epoch seconds)."""
    client = getattr(conf.get_profile_store(), "client", None)
    if client is None:
        return []
    seen = client.hgetall(f"{insights_counting.visitor_prefix(visitor_id)}seen:{insights_counting.digest(visitor_id)}")
    cells = [(cell.split("|", 2), float(at)) for cell, at in sorted(seen.items(), key=lambda pair: float(pair[1]))]
    return [{"page": page, "block": block, "variant": variant, "last_seen": at} for (page, block, variant), at in cells]


_erasures_checked: dict[int, int] = {}


def complete_after_recovery(client: Any) -> None:
    """The first request of a process, and the first after each Redis recovery, that finds Redis
    healthy completes the erasures queued meanwhile (one query when there are none)."""
    guard = getattr(client, "guard", None)
    if guard is None or _erasures_checked.get(id(guard)) == guard.breaker.recoveries:
        return
    _erasures_checked[id(guard)] = guard.breaker.recoveries
    try:
        complete_pending_erasures()
    except Exception as error:  # the worker's turn completes them anyway
        logger.warning("queued erasures not completed yet: %s", error)
