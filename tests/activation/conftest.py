"""Activation fixtures: a real local HTTP server that records what destinations receive, the
session's real Redis as the profile store, and a stream worker to drain it."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from tailored import conf, worker
from tailored.activation import triggers
from tailored.activation.models import Destination, KnownVisitor, Trigger
from tailored.core.types import Event

SECRET = "hook-secret"


class Receiver:
    """A local HTTP server answering every request with the scripted statuses in turn (the last
    one repeats); it records (method, path, headers, body) of each request."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.command, self.path, dict(self.headers), body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"receiver is down" if status >= 400 else b"{}")

            do_POST = do_PUT = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def start(*statuses: int) -> Receiver:
        made.append(Receiver(list(statuses) or [200]))
        return made[-1]

    yield start
    for server in made:
        server.close()


@pytest.fixture
def activation(use_redis_store, redis_client, personalization):
    """The real Redis store, a stream group, and the trigger cache re-read for this test."""
    personalization(WEBHOOK_TIMEOUT_SECONDS=2, WEBHOOK_MAX_ATTEMPTS=3, SEGMENT_REFRESH_SECONDS=0)
    worker.ensure_group(redis_client)
    triggers.trigger_cache.invalidate()
    yield redis_client
    triggers.trigger_cache.invalidate()


def webhook(url: str, **fields) -> Destination:
    return Destination.objects.create(name="CRM hook", kind="webhook", url=url, secret=SECRET, **fields)


def make_trigger(destination: Destination, kind: str, **fields) -> Trigger:
    return Trigger.objects.create(name=fields.pop("name", kind), kind=kind, destination=destination, **fields)


def known(visitor_id: str, marketing: bool = True, email: str = "ada@example.com", user_id: str = "") -> KnownVisitor:
    return KnownVisitor.objects.create(
        visitor_id=visitor_id, email=email if marketing else "", marketing=marketing,
        email_hash="0" * 64, identified_at=timezone.now(), user_id=user_id,
    )


def ingest(visitor_id: str, *events: Event, now: float | None = None) -> None:
    """Events in as the API takes them (profile and stream), then a worker drains the stream."""
    now = time.time() if now is None else now
    conf.get_profile_store().record(visitor_id, list(events), now)
    drain(now)


def drain(now: float | None = None) -> worker.StepResult:
    client = conf.get_profile_store().client
    who = worker.Consumer(name="test-worker", batch=50, block_ms=0)
    total = worker.StepResult()
    while result := worker.process_once(client, who, now=time.time() if now is None else now):
        total += result
    return total


def view(n: int, category: str = "electronics", item: str | None = None, ts: float | None = None) -> Event:
    return Event(f"view-{n}-{time.monotonic_ns()}", "page_view", ts=ts or time.time(), category=category,
                 item=item or str(n), attrs={"page_type": "product"})
