"""Outgoing webhooks: an outbox of `WebhookDelivery` rows, sent by the stream workers.

`enqueue(topic, payload)` writes one delivery per configured webhook subscribed to the topic
(PERSONALIZATION["WEBHOOKS"] = [{"url", "secret", "topics"}]); every worker loop calls
`deliver_due()`, which POSTs each pending delivery whose time has come. A non-2xx answer, a
timeout or a connection error is recorded (attempts, last_error) and retried with exponential
backoff; after WEBHOOK_MAX_ATTEMPTS the delivery is marked failed and logged as an error. Nothing
is dropped silently: the row stays, with its last error, for an operator to see.

What a receiver gets::

    POST <url>
    Content-Type: application/json
    X-Tailored-Topic: cart_abandoned
    X-Tailored-Delivery: 42          (the same on every retry: use it to ignore duplicates)
    X-Tailored-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed by the secret>

    {"topic": "cart_abandoned", "visitor_id": "...", ...}

Delivery is at least once (a worker that dies mid-call leaves the delivery to be sent again), so
receivers deduplicate by X-Tailored-Delivery. An attempt has WEBHOOK_TIMEOUT_SECONDS in all
(connecting, sending, and the answer's status and headers, and the start of a failing answer's
body): a receiver that answers slower, even a byte at a time, fails the attempt ("no complete
answer within 5 s"), retried like a 500. One worker turn starts sends for at most
SEND_BUDGET_TIMEOUTS times that long; deliveries it did not reach wait for the next turn.

To authenticate a call, check the signature against the raw body before parsing it::

    from tailored.webhooks import verify_signature

    if not verify_signature(SECRET, request.body, request.headers.get("X-Tailored-Signature")):
        return HttpResponseForbidden()
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.utils import timezone

from tailored import conf, outbound
from tailored.models import WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
MAX_BACKOFF_SECONDS = 3600
# A worker claims a delivery for this long before sending it, so a second worker does not send it
# too; if the first dies mid-call, the delivery becomes due again when the lease runs out.
CLAIM_LEASE = timedelta(minutes=5)
# How much of a failing response's body is kept in last_error.
ERROR_SNIPPET_BYTES = 200
# A worker turn starts no new send after this many WEBHOOK_TIMEOUT_SECONDS spent sending (each
# attempt ends within one), so many slow receivers cannot hold event processing: at most
# (SEND_BUDGET_TIMEOUTS + 1) timeouts per outbox per turn. The rest are sent on the next turns.
SEND_BUDGET_TIMEOUTS = 2


def subscribers(topic: str) -> list[dict[str, Any]]:
    """The configured webhooks that want `topic`."""
    return [hook for hook in conf.get("WEBHOOKS") if topic in hook.get("topics", ())]


def enqueue(topic: str, payload: dict[str, Any], now: datetime | None = None) -> list[WebhookDelivery]:
    """Queue `payload` for every webhook subscribed to `topic`; sent by the next `deliver_due`."""
    now = now or timezone.now()
    deliveries = [
        WebhookDelivery(topic=topic, url=hook["url"], payload=payload, next_attempt_at=now)
        for hook in subscribers(topic)
    ]
    return WebhookDelivery.objects.bulk_create(deliveries)


def encode_body(payload: dict[str, Any]) -> bytes:
    """The request body: compact, key-sorted JSON, so every retry sends the same bytes."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, body: bytes) -> str:
    """The X-Tailored-Signature value for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is the signature of `body` under `secret` (constant-time comparison)."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def backoff_seconds(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failure: 2**attempts capped at an hour, plus up to
    10% jitter so deliveries that failed together do not all retry in the same second."""
    delay = min(2.0**attempts, MAX_BACKOFF_SECONDS)
    return delay + random.uniform(0, delay * 0.1)


def deliver_due(now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Send the pending deliveries that are due; counts of delivered, retrying and failed."""
    now = now or timezone.now()
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        ).order_by("next_attempt_at")[:limit]
    )
    if not due:
        return counts
    with http_client() as http:
        for delivery in claimed_this_turn(due, now, "webhooks"):
            counts[attempt(http, delivery, now)] += 1
    return counts


def claimed_this_turn(due: list[Any], now: datetime, outbox: str) -> Iterator[Any]:
    """The due outbox rows (WebhookDelivery or ActivationSend) this worker claims, one at a time,
    for as long as the turn may start sends: SEND_BUDGET_TIMEOUTS attempts' worth. The rest wait
    for the next turn."""
    ends = time.monotonic() + SEND_BUDGET_TIMEOUTS * outbound.attempt_timeout()
    for index, row in enumerate(due):
        if time.monotonic() >= ends:
            logger.warning("%s: %d due sends wait for the next turn (this turn's send time is up)", outbox, len(due) - index)
            return
        if claim(row, now):
            yield row


def http_client() -> httpx.Client:
    """The client outbound sends use: the configured timeout (per operation, and per attempt
    within `outbound.attempt_deadline`), and no redirects (a receiver's redirect must not move a
    signed payload elsewhere). It connects directly: proxies from the environment are not used."""
    return outbound.deadline_client()


def claim(row: Any, now: datetime) -> bool:
    """Take a pending outbox row (a WebhookDelivery or an ActivationSend) for CLAIM_LEASE; False
    when another worker got it first (its next_attempt_at is no longer the one we read)."""
    claimed = type(row).objects.filter(
        pk=row.pk, status="pending", next_attempt_at=row.next_attempt_at
    ).update(next_attempt_at=now + CLAIM_LEASE)
    return claimed == 1


def attempt(http: httpx.Client, delivery: WebhookDelivery, now: datetime) -> str:
    """POST one delivery and record the outcome: "delivered", "retrying" or "failed"."""
    hook = next((h for h in subscribers(delivery.topic) if h["url"] == delivery.url), None)
    if hook is None:
        # The webhook was removed from the settings: keep the row and its error, and retry, in case
        # the configuration comes back (a deploy in progress).
        return _record_failure(delivery, "no webhook with this url and topic is configured", now)
    body = encode_body(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tailored-Webhooks/1",
        "X-Tailored-Topic": delivery.topic,
        "X-Tailored-Delivery": str(delivery.pk),
        "X-Tailored-Signature": sign(hook["secret"], body),
    }
    try:
        # Streamed, so a receiver's large response body is never read whole; the whole attempt
        # ends by WEBHOOK_TIMEOUT_SECONDS (a ReadTimeout "no complete answer within 5 s").
        with outbound.attempt_deadline(), http.stream("POST", delivery.url, content=body, headers=headers) as response:
            if response.is_success:
                return _record_success(delivery, now)
            snippet = next(response.iter_bytes(ERROR_SNIPPET_BYTES), b"")[:ERROR_SNIPPET_BYTES]
            error = f"HTTP {response.status_code}: {snippet.decode(errors='replace')}"
    except Exception as exc:
        # Any failure to send (timeout, refused connection, bad URL) is a failed attempt: recorded
        # and retried like a 500, never raised into the worker loop.
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return _record_failure(delivery, error, now)


def _record_success(delivery: WebhookDelivery, now: datetime) -> str:
    delivery.status = WebhookDelivery.Status.DELIVERED
    delivery.attempts += 1
    delivery.delivered_at = now
    delivery.last_error = ""
    delivery.save(update_fields=["status", "attempts", "delivered_at", "last_error"])
    logger.info("webhook %s delivered: %s -> %s", delivery.pk, delivery.topic, delivery.url)
    return "delivered"


def _record_failure(delivery: WebhookDelivery, error: str, now: datetime) -> str:
    delivery.attempts += 1
    delivery.last_error = error
    max_attempts = int(conf.get("WEBHOOK_MAX_ATTEMPTS"))
    if delivery.attempts >= max_attempts:
        delivery.status = WebhookDelivery.Status.FAILED
        outcome = "failed"
        logger.error(
            "webhook %s gave up after %d attempts: %s -> %s: %s",
            delivery.pk, delivery.attempts, delivery.topic, delivery.url, error,
        )
    else:
        delivery.next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
        outcome = "retrying"
        logger.warning(
            "webhook %s attempt %d/%d failed (%s -> %s): %s; next try at %s",
            delivery.pk, delivery.attempts, max_attempts, delivery.topic, delivery.url, error,
            delivery.next_attempt_at.isoformat(),
        )
    delivery.save(update_fields=["status", "attempts", "last_error", "next_attempt_at"])
    return outcome
