"""Where a trigger's sends go (issue 20 item 2): kinds of destination and how each sends.

Built in:

- `webhook`: a signed POST of the payload (HMAC-SHA256 of the exact body in
  X-Tailored-Signature, as tailored.webhooks; the firing's key in Idempotency-Key).
- `email`: Django's mail, with a subject and body an editor writes as Django templates.
- `contact_event`: the generic "contact upsert + event" JSON API many CRMs and marketing tools
  accept (documented in the README): PUT {url}/contacts/{external_id}, then POST {url}/events,
  with `Authorization: Bearer <secret>`.

A site adds its own (HubSpot, Braze, Mailchimp) with a Wagtail hook returning a DestinationKind:

    @hooks.register("register_tailored_destination")
    def braze():
        return DestinationKind("braze", "Braze", needs=frozenset({"user_id"}), send=send_to_braze)

`needs` names the visitor fields the kind receives beyond the trigger and its reason (see
PAYLOAD_FIELDS): the payload carries those and nothing more. `send(destination, payload, http)`
raises DeliveryError when the send failed; `retry=False` when trying again cannot help (a 4xx).
Sends made with the `http` client it is given end by WEBHOOK_TIMEOUT_SECONDS for the whole
attempt (a timeout is a failed attempt, retried); a kind that sends otherwise (its own SDK or
client) must bound its own time, since it runs inside the stream worker's turn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from django.core.mail import EmailMessage
from django.template import Context, Template, TemplateSyntaxError

from tailored import outbound, webhooks

from .models import Destination

# What a destination may receive about the visitor, beyond the trigger, its time and its reason.
PAYLOAD_FIELDS = {
    "visitor_id": "the pseudonymous visitor id",
    "user_id": "the site's user id (logged-in visitors)",
    "email": "the email address (kept in clear only with marketing consent)",
    "traits": "the visitor's CRM traits",
    "recommended": "recommended products (id, title, url, price)",
    "last_viewed": "the products last viewed",
    "cart": "what the cart holds",
}
ERROR_SNIPPET_BYTES = 200


class DeliveryError(Exception):
    """A send that did not go through; `retry` False when repeating it cannot help."""

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class DestinationKind:
    kind: str
    label: str
    send: Callable[[Destination, Mapping[str, Any], httpx.Client], None]
    needs: frozenset[str] = field(default_factory=frozenset)
    needs_url: bool = False

    def fields_for(self, destination: Destination) -> frozenset[str]:
        """The visitor fields this destination's payload carries: the kind's own needs, plus
        any its editor picked (options["fields"]) from PAYLOAD_FIELDS."""
        extra = destination.options.get("fields", ()) if isinstance(destination.options, dict) else ()
        return self.needs | {name for name in extra if name in PAYLOAD_FIELDS}


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    snippet = response.content[:ERROR_SNIPPET_BYTES].decode(errors="replace")
    # A client error (except timeouts and rate limits) repeats on every retry: a dead letter now.
    retry = response.status_code >= 500 or response.status_code in (408, 429)
    raise DeliveryError(f"HTTP {response.status_code}: {snippet}", retry=retry)


def _post(http: httpx.Client, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> None:
    try:
        response = http.request(method, url, content=body, headers={"Content-Type": "application/json", **headers})
    except outbound.RefusedAddress as exc:  # the same on every retry
        raise DeliveryError(str(exc), retry=False) from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
    _raise_for_status(response)


def send_webhook(destination: Destination, payload: Mapping[str, Any], http: httpx.Client) -> None:
    body = webhooks.encode_body(dict(payload))
    headers = {
        "User-Agent": "Tailored-Activation/1",
        "X-Tailored-Topic": str(payload["trigger"]["kind"]),
        "Idempotency-Key": str(payload["idempotency_key"]),
    }
    if destination.secret:
        headers["X-Tailored-Signature"] = webhooks.sign(destination.secret, body)
    _post(http, "POST", destination.url, body, headers)


def render_email(destination: Destination, payload: Mapping[str, Any]) -> tuple[str, str]:
    """The subject and body, rendered with the payload's tokens ({{ recommended }}, ...)."""
    tokens = Context({**payload, "trigger": payload["trigger"]["name"]}, autoescape=False)
    try:
        subject = Template(destination.email_subject or "{{ trigger }}").render(tokens)
        body = Template(destination.email_body or "").render(tokens)
    except TemplateSyntaxError as exc:
        raise DeliveryError(f"the email template does not render: {exc}", retry=False) from exc
    return " ".join(subject.split()), body


def send_email(destination: Destination, payload: Mapping[str, Any], http: httpx.Client) -> None:
    address = payload.get("email")
    if not address:
        raise DeliveryError("the visitor has no address kept in clear (no marketing consent)", retry=False)
    subject, body = render_email(destination, payload)
    message = EmailMessage(subject, body, to=[address], headers={"X-Tailored-Idempotency-Key": payload["idempotency_key"]})
    try:
        message.send()
    except Exception as exc:  # SMTP down, refused: retried with backoff like any failed send
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


def contact_upsert_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in {
            "external_id": payload["visitor_id"],
            "email": payload.get("email"),
            "user_id": payload.get("user_id"),
            "traits": payload.get("traits") or {},
        }.items()
        if value is not None
    }


def contact_event_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "external_id": payload["visitor_id"],
        "event": payload["trigger"]["kind"],
        "name": payload["trigger"]["name"],
        "occurred_at": payload["fired_at"],
        "properties": payload.get("reason", {}),
        "idempotency_key": payload["idempotency_key"],
    }


def send_contact_event(destination: Destination, payload: Mapping[str, Any], http: httpx.Client) -> None:
    base = destination.url.rstrip("/")
    headers = {"User-Agent": "Tailored-Activation/1", "Idempotency-Key": str(payload["idempotency_key"])}
    if destination.secret:
        headers["Authorization"] = f"Bearer {destination.secret}"
    contact = webhooks.encode_body(contact_upsert_body(payload))
    # Both calls are idempotent (PUT of the same contact; the event carries its key), so a retry
    # after the first succeeded and the second failed repeats nothing a receiver would count twice.
    _post(http, "PUT", f"{base}/contacts/{quote(str(payload['visitor_id']), safe='')}", contact, headers)
    _post(http, "POST", f"{base}/events", webhooks.encode_body(contact_event_body(payload)), headers)


BUILT_IN = (
    DestinationKind("webhook", "Signed webhook", send_webhook, needs=frozenset({"visitor_id"}), needs_url=True),
    DestinationKind("email", "Email", send_email, needs=frozenset({"email", "recommended", "last_viewed", "cart"})),
    DestinationKind(
        "contact_event", "Contact upsert + event (JSON API)", send_contact_event,
        needs=frozenset({"visitor_id", "email", "user_id", "traits"}), needs_url=True,
    ),
)


def kinds() -> dict[str, DestinationKind]:
    """Every destination kind: the built-in ones, then those the site registers."""
    from wagtail import hooks  # loaded when a destination is used, not on every import

    found = {kind.kind: kind for kind in BUILT_IN}
    for hook in hooks.get_hooks("register_tailored_destination"):
        kind = hook()
        if not isinstance(kind, DestinationKind):
            raise TypeError(f"register_tailored_destination hook {hook!r} must return a DestinationKind")
        found[kind.kind] = kind
    return found


def kind_of(destination: Destination) -> DestinationKind | None:
    return kinds().get(destination.kind)
