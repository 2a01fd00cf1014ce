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
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

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
        return None
    return None


class GuardedTransport(httpx.HTTPTransport):
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
    """The client activation sends use: the webhooks' timeout, no redirects, allowed addresses only."""
    return httpx.Client(
        timeout=httpx.Timeout(float(conf.get("WEBHOOK_TIMEOUT_SECONDS"))),
        follow_redirects=False,
        transport=GuardedTransport(),
    )
