"""The activation outbox (issue 20 item 2): a firing becomes one ActivationSend row, which the
stream workers deliver with retries and backoff.

Exactly once per firing: the row's `idempotency_key` names the firing (the trigger, the visitor
and what caused it), so a worker that evaluates the same batch twice (a crash before its
acknowledgement) finds the row and adds nothing; destinations receive the key (Idempotency-Key,
the payload's `idempotency_key`) to drop a repeat of a delivery whose answer was lost. A
destination that is down leaves the row pending, retried with backoff (tailored.webhooks'
schedule) until WEBHOOK_MAX_ATTEMPTS, then `failed`: a dead letter listed in the admin's
activation log, where an editor can send it again.

Before every attempt the visitor's marketing consent is read again: a send queued before the
visitor withdrew is skipped, never delivered.

Every attempt (all the requests a kind makes with the client it is given, custom kinds included)
ends by WEBHOOK_TIMEOUT_SECONDS in total (`outbound.attempt_deadline`): a destination that answers
slower fails the attempt, retried with backoff. A turn starts sends for at most
webhooks.SEND_BUDGET_TIMEOUTS timeouts; the rest wait for the next turn.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tailored import conf, outbound, webhooks
from tailored.core.activation import QuietHours
from tailored.core.context import minute_of_day

from .destinations import DeliveryError, kind_of
from .models import ActivationSend, Destination, KnownVisitor

logger = logging.getLogger(__name__)

def first_attempt_at(quiet: QuietHours | None, now: datetime) -> datetime:
    """Now, or the end of the quiet hours (site time) when now falls in them."""
    if quiet is None:
        return now
    local = timezone.localtime(now, timezone.get_default_timezone())
    wait = quiet.minutes_left(minute_of_day(local))
    return now if wait == 0 else (now + timedelta(minutes=wait)).replace(second=0, microsecond=0)


def queue(destination: Destination, visitor_id: str, key: str, payload: dict[str, Any], trigger=None,
          quiet: QuietHours | None = None, now: datetime | None = None, test: bool = False) -> ActivationSend | None:
    """Add the send of one firing; None when a send with this key exists (the same firing)."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            return ActivationSend.objects.create(
                trigger=trigger, destination=destination, visitor_id=visitor_id, idempotency_key=key,
                payload=payload, next_attempt_at=first_attempt_at(quiet, now), test=test, created_at=now,
            )
    except IntegrityError:
        return None


def deliver_due(now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Deliver the pending sends that are due; counts by outcome."""
    now = now or timezone.now()
    counts = {"delivered": 0, "retrying": 0, "failed": 0, "skipped": 0}
    due = list(
        ActivationSend.objects.filter(status=ActivationSend.Status.PENDING, next_attempt_at__lte=now)
        .select_related("destination")
        .order_by("next_attempt_at")[:limit]
    )
    if not due:
        return counts
    with outbound.guarded_client() as http:
        for send in webhooks.claimed_this_turn(due, now, "activation"):
            counts[attempt(http, send, now)] += 1
    return counts


def attempt(http: httpx.Client, send: ActivationSend, now: datetime) -> str:
    """Deliver one send and record the outcome: delivered, retrying, failed or skipped."""
    destination = send.destination
    if not send.test and not KnownVisitor.objects.filter(visitor_id=send.visitor_id, marketing=True).exists():
        return _finish(send, ActivationSend.Status.SKIPPED, "the visitor no longer grants marketing", now)
    kind = kind_of(destination) if destination is not None else None
    if destination is None or kind is None or not destination.enabled:
        # Removed, disabled or unregistered (a deploy in progress): retried, visible in the log.
        return _failure(send, "the destination is missing, disabled or of an unknown kind", True, now)
    try:
        with outbound.attempt_deadline():  # the whole attempt, however many requests the kind makes
            kind.send(destination, send.payload, http)
    except DeliveryError as error:
        return _failure(send, str(error), error.retry, now)
    except Exception as error:  # a destination plugin's bug is a failed attempt, never a stuck worker
        logger.exception("activation send %s: destination %s raised", send.pk, destination)
        return _failure(send, f"{type(error).__name__}: {error}", True, now)
    send.status, send.delivered_at, send.last_error = ActivationSend.Status.DELIVERED, now, ""
    send.attempts += 1
    send.save(update_fields=["status", "delivered_at", "last_error", "attempts"])
    logger.info("activation send %s delivered to %s", send.pk, destination)
    return "delivered"


def _finish(send: ActivationSend, status: str, reason: str, now: datetime) -> str:
    send.status, send.last_error = status, reason
    send.save(update_fields=["status", "last_error"])
    return str(status)


def _failure(send: ActivationSend, error: str, retry: bool, now: datetime) -> str:
    send.attempts += 1
    send.last_error = error[:2000]
    # A test send shows its outcome at once: it is never retried.
    if send.test or not retry or send.attempts >= int(conf.get("WEBHOOK_MAX_ATTEMPTS")):
        send.status = ActivationSend.Status.FAILED
        logger.error("activation send %s failed after %d attempts: %s", send.pk, send.attempts, error)
        outcome = "failed"
    else:
        send.next_attempt_at = now + timedelta(seconds=webhooks.backoff_seconds(send.attempts))
        logger.warning("activation send %s attempt %d failed: %s", send.pk, send.attempts, error)
        outcome = "retrying"
    send.save(update_fields=["status", "attempts", "last_error", "next_attempt_at"])
    return outcome


def retry(send: ActivationSend, now: datetime | None = None) -> None:
    """An editor sends a dead letter again (the admin's log): pending, due now, attempts reset."""
    send.status, send.attempts, send.next_attempt_at = ActivationSend.Status.PENDING, 0, now or timezone.now()
    send.save(update_fields=["status", "attempts", "next_attempt_at"])


def send_test(destination: Destination, now: datetime | None = None) -> ActivationSend:
    """The admin's "send test" button: a sample payload with every field the destination takes,
    delivered at once; the row (marked test) shows the outcome."""
    now = now or timezone.now()
    kind = kind_of(destination)
    fields = kind.fields_for(destination) if kind is not None else frozenset()
    sample = {
        "idempotency_key": f"test:{destination.pk}:{now.timestamp():.6f}",
        "trigger": {"id": None, "name": "Test send", "kind": "test"},
        "fired_at": now.isoformat(),
        "reason": {"test": True},
        "visitor_id": "0" * 32,
        "user_id": "test-user",
        "email": getattr(settings, "DEFAULT_FROM_EMAIL", "test@example.com"),
        "traits": {"loyalty_tier": "gold"},
        "recommended": [{"id": 1, "title": "A recommended product", "url": "https://example.com/p/1", "price": 9.99}],
        "last_viewed": [{"id": 2, "title": "A product viewed last", "url": "https://example.com/p/2", "price": 19.0}],
        "cart": [],
    }
    base = ("idempotency_key", "trigger", "fired_at", "reason")
    payload = {key: value for key, value in sample.items() if key in base or key in fields}
    send = queue(destination, "test", payload["idempotency_key"], payload, now=now, test=True)
    with outbound.guarded_client() as http:
        webhooks.claim(send, now)
        send.refresh_from_db()
        attempt(http, send, now)
    send.refresh_from_db()
    return send
