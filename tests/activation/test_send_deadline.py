"""Every send attempt ends by WEBHOOK_TIMEOUT_SECONDS in total (tailored.outbound.attempt_deadline):
httpx's timeouts are per read, so a receiver that trickles its answer a byte at a time would hold
the stream worker for as long as it likes. Against a real local server that trickles (or is slow),
for configured webhooks and activation destinations alike; httpx is never patched."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from wagtail import hooks

from tailored import webhooks
from tailored.activation import sending
from tailored.activation.destinations import DestinationKind, _post
from tailored.activation.models import ActivationSend, Destination
from tailored.models import WebhookDelivery
from tests.activation.conftest import known, webhook

pytestmark = pytest.mark.django_db

TIMEOUT = 1.0
MARGIN = 1.5  # generous for a loaded CI machine; without the deadline the trickle takes TRICKLE_SECONDS
TRICKLE_SECONDS = 6.0
TIMED_OUT = f"ReadTimeout: no complete answer within {TIMEOUT:g} s"


class Receiver:
    """A raw HTTP server. Modes: "trickle" sends the status line, then one header byte every 0.3 s;
    "trickle_body" sends complete headers and then the body a byte every 0.3 s; "slow" answers
    200 after `delay` seconds; "fast" answers 200 at once."""

    def __init__(self, mode: str, delay: float = 0.0):
        self.mode, self.delay = mode, delay
        self.requests = 0
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _trickle(self, conn: socket.socket) -> None:
        end = time.monotonic() + TRICKLE_SECONDS
        while time.monotonic() < end and not self.stop.is_set():
            conn.sendall(b"a")
            time.sleep(0.3)

    def _handle(self, conn: socket.socket) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            if self.mode == "trickle":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                self._trickle(conn)
                conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")
            elif self.mode == "trickle_body":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                self._trickle(conn)
            else:
                time.sleep(self.delay)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        except OSError:
            pass  # the client gave up: what the deadline is for
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def server() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def start(mode: str, delay: float = 0.0) -> Receiver:
        made.append(Receiver(mode, delay))
        return made[-1]

    yield start
    for receiver in made:
        receiver.close()


@pytest.fixture
def timeout(personalization):
    personalization(WEBHOOK_TIMEOUT_SECONDS=TIMEOUT, WEBHOOK_MAX_ATTEMPTS=3)


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# Configured webhooks ------------------------------------------------------------------------------


def test_a_trickling_webhook_receiver_fails_the_attempt_at_the_timeout_and_a_fast_one_still_gets_its_delivery(
    personalization, timeout, server,
):
    slow, fast = server("trickle"), server("fast")
    personalization(WEBHOOKS=[
        {"url": slow.url + "/hook", "secret": "s", "topics": ["t"]},
        {"url": fast.url + "/hook", "secret": "s", "topics": ["t"]},
    ])
    webhooks.enqueue("t", {"n": 1})
    counts, took = timed(webhooks.deliver_due)
    assert took < TIMEOUT + MARGIN, took
    assert counts == {"delivered": 1, "retrying": 1, "failed": 0}
    stalled = WebhookDelivery.objects.get(url=slow.url + "/hook")
    assert (stalled.status, stalled.attempts, stalled.last_error) == ("pending", 1, TIMED_OUT)
    assert WebhookDelivery.objects.get(url=fast.url + "/hook").status == "delivered"
    assert fast.requests == 1


def test_a_turn_stops_starting_sends_when_its_send_time_is_up(personalization, timeout, server):
    slow = server("trickle")
    personalization(WEBHOOKS=[{"url": slow.url + "/hook", "secret": "s", "topics": ["t"]}])
    for n in range(6):
        webhooks.enqueue("t", {"n": n})
    counts, took = timed(webhooks.deliver_due)
    # SEND_BUDGET_TIMEOUTS attempts' worth, plus the attempt started last.
    assert took < (webhooks.SEND_BUDGET_TIMEOUTS + 1) * TIMEOUT + MARGIN, took
    assert counts["retrying"] >= webhooks.SEND_BUDGET_TIMEOUTS  # each attempt takes the whole timeout
    waiting = WebhookDelivery.objects.filter(attempts=0, status="pending").count()
    assert 0 < waiting == 6 - counts["retrying"]  # untouched, due on the next turn
    assert not WebhookDelivery.objects.filter(status="failed").exists()


# Activation destinations --------------------------------------------------------------------------


def test_send_test_to_a_trickling_destination_fails_within_the_timeout(timeout, server):
    slow = server("trickle")
    destination = webhook(slow.url + "/hook")
    send, took = timed(lambda: sending.send_test(destination))
    assert took < TIMEOUT + MARGIN, took
    assert (send.status, send.last_error) == ("failed", TIMED_OUT)  # a test send is never retried


@pytest.mark.parametrize("mode", ["trickle", "trickle_body"])
def test_a_due_send_to_a_trickling_destination_is_retried_and_a_fast_one_delivered(timeout, server, mode):
    slow, fast = server(mode), server("fast")
    known("a" * 32)
    for name, receiver in (("slow", slow), ("fast", fast)):
        destination = Destination.objects.create(name=name, kind="webhook", url=receiver.url + "/hook", secret="s")
        sending.queue(destination, "a" * 32, f"key-{name}", {
            "idempotency_key": f"key-{name}", "trigger": {"id": None, "name": "t", "kind": "t"}, "visitor_id": "a" * 32,
        })
    counts, took = timed(sending.deliver_due)
    assert took < TIMEOUT + MARGIN, took
    assert (counts["delivered"], counts["retrying"]) == (1, 1)
    stalled = ActivationSend.objects.get(destination__name="slow")
    assert (stalled.status, stalled.attempts, stalled.last_error) == ("pending", 1, TIMED_OUT)
    assert ActivationSend.objects.get(destination__name="fast").status == "delivered"


def test_the_deadline_bounds_the_whole_attempt_of_a_registered_kind_not_each_request(timeout, server):
    # Each answer comes within the per-read timeout; three in a row do not fit in one attempt.
    slow = server("slow", delay=0.6 * TIMEOUT)

    def three_calls(destination, payload, http) -> None:
        for _ in range(3):
            _post(http, "POST", destination.url, b"{}", {})

    kind = DestinationKind("chatty", "Chatty", three_calls)
    destination = Destination.objects.create(name="Chatty", kind="chatty", url=slow.url + "/api")
    with hooks.register_temporarily("register_tailored_destination", lambda: kind):
        send, took = timed(lambda: sending.send_test(destination))
    assert took < TIMEOUT + MARGIN, took
    assert (send.status, send.last_error) == ("failed", TIMED_OUT)
    assert slow.requests == 2  # the third was never answered in time: the second used up the attempt
