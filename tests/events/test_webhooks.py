"""Webhook delivery against a real local HTTP server: signatures, retries with backoff, timeouts,
giving up."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from tailored import webhooks
from tailored.models import WebhookDelivery

pytestmark = pytest.mark.django_db

SECRET = "s3cret"
PAYLOAD = {"topic": "cart_abandoned", "visitor_id": "v" * 32, "items": [3, 7], "detected_at": "2026-01-01T00:00:00+00:00"}


class Receiver:
    """A local HTTP server answering with the scripted statuses in turn (the last one repeats),
    optionally after a delay; it records every request it gets."""

    def __init__(self, statuses: list[int], delay: float = 0.0):
        self.statuses, self.delay = list(statuses), delay
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"server says no" if status >= 400 else b"ok")
                except OSError:
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tailored"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def configure(settings):
    def configure(url: str, **options) -> None:
        settings.PERSONALIZATION = {
            "WEBHOOKS": [{"url": url, "secret": SECRET, "topics": ["cart_abandoned"]}],
            "WEBHOOK_TIMEOUT_SECONDS": 0.5,
            "WEBHOOK_MAX_ATTEMPTS": 3,
            **options,
        }

    return configure


def test_enqueue_creates_one_delivery_per_subscribed_webhook(settings):
    settings.PERSONALIZATION = {
        "WEBHOOKS": [
            {"url": "https://crm.example/hook", "secret": "a", "topics": ["cart_abandoned"]},
            {"url": "https://mail.example/hook", "secret": "b", "topics": ["cart_abandoned", "other"]},
            {"url": "https://other.example/hook", "secret": "c", "topics": ["other"]},
        ]
    }

    deliveries = webhooks.enqueue("cart_abandoned", PAYLOAD)

    assert sorted(d.url for d in deliveries) == ["https://crm.example/hook", "https://mail.example/hook"]
    assert {(d.status, d.attempts, d.topic) for d in WebhookDelivery.objects.all()} == {("pending", 0, "cart_abandoned")}


def test_a_failed_call_is_retried_later_with_the_same_signed_body(configure):
    with Receiver([500, 200]) as receiver:
        configure(receiver.url)
        [delivery] = webhooks.enqueue("cart_abandoned", PAYLOAD)
        now = timezone.now()

        assert webhooks.deliver_due(now) == {"delivered": 0, "retrying": 1, "failed": 0}
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error == "HTTP 500: server says no"
        # 2**1 seconds, plus up to 10% jitter.
        assert now + timedelta(seconds=2) <= delivery.next_attempt_at <= now + timedelta(seconds=2.2)

        # Not due yet: nothing is sent.
        assert webhooks.deliver_due(now + timedelta(seconds=1)) == {"delivered": 0, "retrying": 0, "failed": 0}
        later = delivery.next_attempt_at
        assert webhooks.deliver_due(later) == {"delivered": 1, "retrying": 0, "failed": 0}

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.delivered_at, delivery.last_error) == ("delivered", 2, later, "")
    assert len(receiver.requests) == 2
    (first_headers, first_body), (second_headers, second_body) = receiver.requests
    assert first_body == second_body
    assert json.loads(first_body) == PAYLOAD
    for headers in (first_headers, second_headers):
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Tailored-Topic"] == "cart_abandoned"
        assert headers["X-Tailored-Delivery"] == str(delivery.pk)
        assert webhooks.verify_signature(SECRET, first_body, headers["X-Tailored-Signature"])
    assert not webhooks.verify_signature("another secret", first_body, first_headers["X-Tailored-Signature"])
    assert not webhooks.verify_signature(SECRET, first_body + b" ", first_headers["X-Tailored-Signature"])
    # Nothing left to send.
    assert webhooks.deliver_due(later + timedelta(days=1)) == {"delivered": 0, "retrying": 0, "failed": 0}


def test_a_timeout_is_a_failed_attempt(configure):
    with Receiver([200], delay=1.5) as receiver:
        configure(receiver.url)
        [delivery] = webhooks.enqueue("cart_abandoned", PAYLOAD)

        started = time.monotonic()
        assert webhooks.deliver_due() == {"delivered": 0, "retrying": 1, "failed": 0}
        assert time.monotonic() - started < 1.4

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error.startswith("ReadTimeout")


def test_a_refused_connection_is_a_failed_attempt(configure):
    with Receiver([200]) as receiver:
        url = receiver.url
    configure(url)  # the server is gone: nothing listens on its port any more
    [delivery] = webhooks.enqueue("cart_abandoned", PAYLOAD)

    assert webhooks.deliver_due() == {"delivered": 0, "retrying": 1, "failed": 0}
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("ConnectError")


def test_after_the_last_attempt_the_delivery_is_marked_failed_and_kept(configure, caplog):
    with Receiver([503]) as receiver:
        configure(receiver.url)
        [delivery] = webhooks.enqueue("cart_abandoned", PAYLOAD)
        now = timezone.now()
        outcomes = []
        for _ in range(4):
            outcomes.append(webhooks.deliver_due(now))
            now += timedelta(hours=2)

    assert [o["retrying"] for o in outcomes] == [1, 1, 0, 0]
    assert [o["failed"] for o in outcomes] == [0, 0, 1, 0]
    assert len(receiver.requests) == 3
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 3, "HTTP 503: server says no")
    assert any(r.levelname == "ERROR" and "gave up after 3 attempts" in r.getMessage() for r in caplog.records)


def test_a_delivery_whose_webhook_was_removed_is_kept_and_retried(configure, settings):
    configure("https://gone.example/hook")
    [delivery] = webhooks.enqueue("cart_abandoned", PAYLOAD)
    settings.PERSONALIZATION = {"WEBHOOKS": []}

    assert webhooks.deliver_due() == {"delivered": 0, "retrying": 1, "failed": 0}
    delivery.refresh_from_db()
    assert "no webhook" in delivery.last_error


def test_of_two_workers_that_read_the_same_due_delivery_only_one_sends_it(configure):
    configure("https://crm.example/hook")
    [delivery] = webhooks.enqueue("cart_abandoned", PAYLOAD)
    same_row_in_another_worker = WebhookDelivery.objects.get(pk=delivery.pk)
    now = timezone.now()

    assert webhooks.claim(delivery, now)
    assert not webhooks.claim(same_row_in_another_worker, now)
    # The claim is a lease: if its holder dies mid-call, the delivery comes due again.
    assert WebhookDelivery.objects.get(pk=delivery.pk).next_attempt_at == now + webhooks.CLAIM_LEASE


def test_backoff_doubles_and_is_capped_at_an_hour():
    assert 2 <= webhooks.backoff_seconds(1) <= 2.2
    assert 256 <= webhooks.backoff_seconds(8) <= 281.6
    assert 3600 <= webhooks.backoff_seconds(30) <= 3960


def test_verify_signature_refuses_missing_and_malformed_headers():
    body = b'{"a":1}'
    assert webhooks.verify_signature("k", body, webhooks.sign("k", body))
    assert not webhooks.verify_signature("k", body, None)
    assert not webhooks.verify_signature("k", body, "")
    assert not webhooks.verify_signature("k", body, "sha256=zzz")
    assert not webhooks.verify_signature("k", body, "sha256=é")
