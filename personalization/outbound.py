"""Where the worker may send what editors configure: activation destinations (their URLs are
typed in the admin, not in settings) reach public addresses only, unless the site allows a
private network (PERSONALIZATION["DESTINATION_PRIVATE_NETWORKS"], e.g. ["10.20.0.0/16"] for an
internal CRM).

Why: a destination's URL is fetched by the worker, from inside the site's network, and the
admin's "send test" shows the first bytes of a failed answer. Without this check anyone who may
edit destinations could reach the cloud's metadata service (169.254.169.254), Redis or an
internal admin from the server and read what it answers.

The check resolves the host once and connects to the address it checked (the Host header and TLS
server name stay the URL's), so a name that resolves to a public address when checked and to a
private one when connecting (DNS rebinding) cannot slip through. Proxies from the environment
are not used for these sends: they would resolve the name themselves.

Every send attempt (a webhook delivery, an activation send, however many requests its kind makes)
has a total deadline, WEBHOOK_TIMEOUT_SECONDS (`attempt_deadline`): httpx's timeouts are per read,
so a receiver that trickles its answer a byte at a time would otherwise hold the worker for as long
as it likes. Clients built here (`guarded_client`, and tailored.webhooks' client) enforce it.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import httpcore
import httpx

from tailored import conf

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SETTING = "DESTINATION_PRIVATE_NETWORKS"


class RefusedAddress(httpx.ConnectError):
    """The URL's host is (or resolves to) an address the site does not allow sends to."""


def allowed_networks() -> list[Network]:
    """The private networks the site allows (the setting; its errors are system check E015)."""
    return [ipaddress.ip_network(entry, strict=False) for entry in conf.get(SETTING) or ()]


def setting_errors() -> list[str]:
    entries = conf.get(SETTING) or ()
    if isinstance(entries, str) or not isinstance(entries, Iterable):
        return [f"PERSONALIZATION[{SETTING!r}] = {entries!r} is not a list of networks, e.g. ['10.20.0.0/16']."]
    errors = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError):
            errors.append(f"PERSONALIZATION[{SETTING!r}] names {entry!r}, which is not a network (e.g. '10.20.0.0/16').")
    return errors


def is_allowed(address: Address, networks: list[Network]) -> bool:
    """Public unicast addresses, and those in a network the site allows."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    if any(address in network for network in networks):
        return True
    return address.is_global and not address.is_multicast


def checked_addresses(host: str, port: int) -> list[str]:
    """The addresses to connect to for `host`, in the resolver's order: every one must be
    allowed. RefusedAddress names the first that is not; a name that does not resolve raises
    httpx.ConnectError, as the connection itself would."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpx.ConnectError(f"{host} does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in found))
    networks = allowed_networks()
    for address in addresses:
        if not is_allowed(address, networks):
            where = host if host == str(address) else f"{host} resolves to {address}, which"
            raise RefusedAddress(
                f"{where} is a private or reserved address: sends go to public addresses only. "
                f"To send inside your network, add it to PERSONALIZATION[{SETTING!r}]."
            )
    return [str(address) for address in addresses]


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def url_refusal(url: str) -> str | None:
    """Why a send to `url` would be refused, or None (also None when the name does not resolve
    now: the send will check again, and a name may only exist where the worker runs)."""
    try:
        parsed = httpx.URL(url)
        checked_addresses(parsed.host, _port(parsed))
    except RefusedAddress as exc:
        return str(exc)
    except (httpx.ConnectError, httpx.InvalidURL):
        pass
    return None


# Attempt deadlines ------------------------------------------------------------------------------
#
# Why a network backend rather than a worker thread per attempt: the backend bounds each socket
# operation by min(its per-read timeout, the time left), so at the deadline the read itself ends,
# the connection is closed and nothing is left running. A thread with a join timeout would return
# on time but leave the thread (and its socket) blocked on the receiver for as long as it trickles,
# piling up with every slow receiver, and cannot be stopped from outside.

_T = TypeVar("_T")
# Bytes written per socket write, so a slow-reading receiver is also checked against the deadline.
WRITE_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class _Deadline:
    at: float  # time.monotonic()
    seconds: float

    @property
    def message(self) -> str:
        return f"no complete answer within {self.seconds:g} s"


_current_deadline: ContextVar[_Deadline | None] = ContextVar("tailored_outbound_deadline", default=None)


def attempt_timeout() -> float:
    """The whole attempt's limit, in seconds (WEBHOOK_TIMEOUT_SECONDS)."""
    return float(conf.get("WEBHOOK_TIMEOUT_SECONDS"))


@contextmanager
def attempt_deadline(seconds: float | None = None) -> Iterator[None]:
    """Within this block, every connect, write and read of the clients built here ends by
    `seconds` (WEBHOOK_TIMEOUT_SECONDS) from now in total; past it they raise httpx's
    ConnectTimeout, WriteTimeout or ReadTimeout: "no complete answer within <seconds> s"."""
    seconds = attempt_timeout() if seconds is None else float(seconds)
    token = _current_deadline.set(_Deadline(time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _current_deadline.reset(token)


def _within_deadline(operation: Callable[[float | None], _T], timeout: float | None, error: type[Exception]) -> _T:
    """Run a socket operation with min(its own timeout, the time left to the attempt's deadline)."""
    deadline = _current_deadline.get()
    if deadline is None:
        return operation(timeout)
    left = deadline.at - time.monotonic()
    if left <= 0:
        raise error(deadline.message)
    try:
        return operation(left if timeout is None else min(timeout, left))
    except httpcore.TimeoutException:
        if time.monotonic() >= deadline.at - 0.01:
            raise error(deadline.message) from None
        raise


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose reads and writes end at the attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _within_deadline(lambda left: self._stream.read(max_bytes, left), timeout, httpcore.ReadTimeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, max(len(buffer), 1), WRITE_CHUNK_BYTES):
            chunk = buffer[start:start + WRITE_CHUNK_BYTES]
            _within_deadline(lambda left, chunk=chunk: self._stream.write(chunk, left), timeout, httpcore.WriteTimeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(_within_deadline(
            lambda left: self._stream.start_tls(ssl_context, server_hostname, left), timeout, httpcore.ConnectTimeout
        ))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, its connections bounded by the attempt's deadline."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None):
        self._backend = backend or httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(_within_deadline(
            lambda left: self._backend.connect_tcp(host, port, left, local_address, socket_options),
            timeout, httpcore.ConnectTimeout,
        ))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(_within_deadline(
            lambda left: self._backend.connect_unix_socket(path, left, socket_options), timeout, httpcore.ConnectTimeout
        ))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport on an httpcore pool with the DeadlineBackend. httpx 0.28/0.29 take no
    network backend argument, so the pool (httpx keeps it at `_pool`, which handle_request and
    close use) is replaced by one built with httpcore's public `network_backend` argument; the
    check below makes an httpx that stores it elsewhere fail loudly rather than send unbounded.
    No proxies: these sends connect directly (activation sends must, see above)."""

    def __init__(self) -> None:
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("httpx.HTTPTransport keeps no httpcore pool at _pool: cannot bound send attempts")
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
            network_backend=DeadlineBackend(),
        )


def deadline_client() -> httpx.Client:
    """A client whose attempts `attempt_deadline` bounds: the webhooks' timeout (per operation),
    no redirects (a receiver's redirect must not move a signed payload elsewhere)."""
    return httpx.Client(timeout=httpx.Timeout(attempt_timeout()), follow_redirects=False, transport=DeadlineTransport())


class GuardedTransport(DeadlineTransport):
    """Connects only to allowed addresses, and to the very addresses it checked (each in turn
    until one answers, as a connection by name would)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        addresses = checked_addresses(host, _port(request.url))
        if addresses == [host]:
            return super().handle_request(request)
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        named = request.url
        for address in addresses[:-1]:
            try:
                return self._send_to(request, named, address)
            except httpx.ConnectError:
                continue
        return self._send_to(request, named, addresses[-1])

    def _send_to(self, request: httpx.Request, named: httpx.URL, address: str) -> httpx.Response:
        request.url = named.copy_with(host=address)  # the Host header keeps the name
        return super().handle_request(request)


def guarded_client() -> httpx.Client:
    """The client activation sends use: the webhooks' timeout, no redirects, allowed addresses
    only; within `attempt_deadline` (tailored.activation.sending sets it around every attempt,
    custom kinds included) the whole attempt ends by WEBHOOK_TIMEOUT_SECONDS."""
    return httpx.Client(
        timeout=httpx.Timeout(attempt_timeout()),
        follow_redirects=False,
        transport=GuardedTransport(),
    )
