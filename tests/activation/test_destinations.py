"""Destinations (issue 20 item 2) against a real local HTTP server and Django's mail outbox: the
contact upsert + event JSON API, email tokens, what a payload carries, client errors as dead
letters, test sends, and a destination kind a site registers."""

from __future__ import annotations

import json
import time

import pytest
from django.core import mail
from wagtail import hooks

from cms.models import ProductPage
from tailored import webhooks
from tailored.activation import sending
from tailored.activation.destinations import DeliveryError, DestinationKind
from tailored.activation.models import ActivationSend, Destination, VisitorTraits
from tailored.core.types import Event
from tests.activation.conftest import SECRET, ingest, known, make_trigger, view, webhook

pytestmark = pytest.mark.django_db
ADA = "a" * 32


def purchase(n: int = 1) -> Event:
    return Event(f"order-{n}", "purchase", ts=time.time(), attrs={"order_id": f"o{n}", "value": 30.0})


def test_contact_event_upserts_the_contact_then_posts_the_event(activation, receiver):
    server = receiver(200)
    destination = Destination.objects.create(name="CRM", kind="contact_event", url=server.url + "/v1/", secret="api-token")
    trigger = make_trigger(destination, "loyalty_milestone", name="First order", params={"purchases": 1})
    known(ADA, email="ada@example.com")
    VisitorTraits.objects.create(visitor_id=ADA, values={"loyalty_tier": "gold"})
    ingest(ADA, purchase())

    [(put, contact_path, put_headers, contact), (post, event_path, post_headers, event)] = server.requests
    assert (put, contact_path, post, event_path) == ("PUT", f"/v1/contacts/{ADA}", "POST", "/v1/events")
    assert put_headers["Authorization"] == post_headers["Authorization"] == "Bearer api-token"
    assert json.loads(contact) == {"external_id": ADA, "email": "ada@example.com", "traits": {"loyalty_tier": "gold"}}
    send = ActivationSend.objects.get()
    assert json.loads(event) == {
        "external_id": ADA, "event": "loyalty_milestone", "name": "First order",
        "occurred_at": send.payload["fired_at"], "properties": {"purchases": 1, "lifetime_value": 30.0},
        "idempotency_key": send.idempotency_key,
    }
    assert send.payload["trigger"]["id"] == trigger.pk and send.status == "delivered"


def test_a_client_error_is_a_dead_letter_at_once(activation, receiver):
    server = receiver(422)
    make_trigger(webhook(server.url), "loyalty_milestone", params={"purchases": 1})
    known(ADA)
    ingest(ADA, purchase())
    send = ActivationSend.objects.get()
    assert (send.status, send.attempts, send.last_error) == ("failed", 1, "HTTP 422: receiver is down")
    assert len(server.requests) == 1


def test_an_email_carries_the_last_viewed_products_and_goes_without_a_trained_recommender(activation):
    products = list(ProductPage.objects.live().filter(in_stock=True).order_by("pk")[:2])
    destination = Destination.objects.create(
        name="Mail", kind="email", email_subject="{{ trigger }}",
        email_body="Seen: {% for p in last_viewed %}{{ p.title }};{% endfor %} For you: {{ recommended|length }}",
    )
    make_trigger(destination, "loyalty_milestone", name="Thanks for your order", params={"purchases": 1})
    known(ADA, email="ada@example.com")
    ingest(ADA, view(1, item=str(products[0].pk)), view(2, item=str(products[1].pk)), purchase())

    [message] = mail.outbox
    assert message.subject == "Thanks for your order"
    seen, recommended = message.body.split(" For you: ")
    assert seen == f"Seen: {products[1].title};{products[0].title};"  # most recent first
    assert recommended == "0"  # no recommender trained in this test: the token is empty, the email still goes
    assert message.extra_headers["X-Tailored-Idempotency-Key"] == ActivationSend.objects.get().idempotency_key


def test_an_email_without_a_clear_address_is_a_dead_letter(activation):
    destination = Destination.objects.create(name="Mail", kind="email", email_body="Hello")
    make_trigger(destination, "loyalty_milestone", params={"purchases": 1})
    known(ADA, email="")
    ingest(ADA, purchase())
    assert ActivationSend.objects.get().last_error == "the visitor has no address kept in clear (no marketing consent)"
    assert not mail.outbox


def test_a_send_test_is_delivered_at_once_and_never_retried(activation, receiver):
    server = receiver(200)
    send = sending.send_test(webhook(server.url))
    assert (send.status, send.test) == ("delivered", True)
    [(_method, _path, headers, body)] = server.requests
    assert webhooks.verify_signature(SECRET, body, headers["X-Tailored-Signature"])
    assert json.loads(body)["trigger"]["name"] == "Test send"

    down = receiver(500)
    send = sending.send_test(webhook(down.url))
    assert (send.status, send.attempts, send.last_error) == ("failed", 1, "HTTP 500: receiver is down")


def test_a_site_registers_its_own_destination_kind(activation):
    received = []

    def send_to_braze(destination, payload, http):
        if destination.options.get("fail"):
            raise DeliveryError("Braze said no", retry=False)
        received.append(dict(payload))

    def braze():
        return DestinationKind("braze", "Braze", send_to_braze, needs=frozenset({"user_id", "traits"}))

    with hooks.register_temporarily("register_tailored_destination", braze):
        destination = Destination.objects.create(name="Braze", kind="braze")
        make_trigger(destination, "loyalty_milestone", params={"purchases": 1})
        known(ADA, user_id="42")
        ingest(ADA, purchase())
    [payload] = received
    # Only what the kind needs: the user id and traits, never the address or the visitor id.
    assert set(payload) == {"idempotency_key", "trigger", "fired_at", "reason", "user_id", "traits"}
    assert payload["user_id"] == "42"


def test_a_destination_of_a_kind_no_longer_registered_is_retried_not_lost(activation):
    destination = Destination.objects.create(name="Gone", kind="braze")
    make_trigger(destination, "loyalty_milestone", params={"purchases": 1})
    known(ADA)
    ingest(ADA, purchase())
    send = ActivationSend.objects.get()
    assert (send.status, send.last_error) == ("pending", "the destination is missing, disabled or of an unknown kind")
