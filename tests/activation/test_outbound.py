"""Activation destinations reach public addresses only, unless the site allows a private network
(tailored.outbound): a destination's URL is typed in the admin, and the worker fetches it from
inside the site's network. Sends go to a real local HTTP server; the test settings allow
loopback, and these tests take that back."""

from __future__ import annotations

import ipaddress

import pytest
from django.core import checks
from django.urls import reverse
from django.utils import timezone

from tailored import outbound
from tailored.activation import sending
from tailored.activation.models import ActivationSend, Destination, KnownVisitor
from tests.activation.conftest import webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_private_networks(personalization):
    personalization(DESTINATION_PRIVATE_NETWORKS=[], WEBHOOK_TIMEOUT_SECONDS=2)


@pytest.mark.parametrize(("address", "allowed"), [
    ("93.184.215.14", True),
    ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ("127.0.0.1", False),
    ("::1", False),
    ("::ffff:127.0.0.1", False),  # loopback written as IPv6
    ("169.254.169.254", False),  # the cloud's metadata service
    ("10.1.2.3", False),
    ("172.16.0.9", False),
    ("192.168.1.1", False),
    ("100.64.0.1", False),  # carrier-grade NAT
    ("0.0.0.0", False),
    ("fd00::1", False),
    ("fe80::1", False),
    ("224.0.0.1", False),
])
def test_only_public_unicast_addresses_are_allowed_by_default(address, allowed):
    assert outbound.is_allowed(ipaddress.ip_address(address), []) is allowed


def test_an_allowed_network_lets_its_addresses_through_and_no_other():
    networks = [ipaddress.ip_network("10.20.0.0/16")]
    assert outbound.is_allowed(ipaddress.ip_address("10.20.5.6"), networks)
    assert not outbound.is_allowed(ipaddress.ip_address("10.21.5.6"), networks)


def test_a_send_to_a_private_address_is_a_dead_letter_and_nothing_reaches_it(no_private_networks, receiver):
    server = receiver(200)
    send = sending.send_test(webhook(server.url + "/hook"))
    assert send.status == ActivationSend.Status.FAILED
    assert send.last_error.startswith("127.0.0.1 is a private or reserved address: sends go to public addresses only.")
    assert "DESTINATION_PRIVATE_NETWORKS" in send.last_error
    assert server.requests == []


def test_a_name_that_resolves_to_a_private_address_is_refused_and_not_retried(no_private_networks, receiver):
    server = receiver(200)
    destination = webhook(server.url.replace("127.0.0.1", "localhost"))
    sending.queue(destination, "a" * 32, "key-1", {"trigger": {"kind": "test"}, "idempotency_key": "key-1"}, test=False)
    KnownVisitor.objects.create(visitor_id="a" * 32, marketing=True, identified_at=timezone.now())
    assert sending.deliver_due()["failed"] == 1  # a refusal repeats on every retry: a dead letter at once
    send = ActivationSend.objects.get()
    assert "localhost resolves to 127.0.0.1, which is a private or reserved address" in send.last_error
    assert server.requests == []


def test_an_allowed_network_is_reached_by_name_at_the_address_checked(personalization, receiver):
    personalization(DESTINATION_PRIVATE_NETWORKS=["127.0.0.0/8", "::1/128"])
    server = receiver(200)
    port = server.url.rsplit(":", 1)[1]
    send = sending.send_test(webhook(f"http://localhost:{port}/hook"))
    assert send.status == ActivationSend.Status.DELIVERED, send.last_error
    [(method, path, headers, _)] = server.requests
    assert (method, path, headers["Host"]) == ("POST", "/hook", f"localhost:{port}")


def test_the_admin_refuses_a_destination_at_a_private_address(no_private_networks, editor):
    form = {"name": "Metadata", "kind": "webhook", "url": "http://169.254.169.254/latest/meta-data/", "enabled": "on"}
    response = editor.post(reverse("tailored_destinations:add"), form)
    assert response.status_code == 200
    [message] = response.context["form"].errors["url"]
    assert message.startswith("169.254.169.254 is a private or reserved address")
    assert not Destination.objects.exists()


def test_the_admin_keeps_a_destination_whose_name_does_not_resolve_here(no_private_networks, editor):
    """The worker checks again at every send; a name may resolve only where the worker runs."""
    form = {"name": "CRM", "kind": "webhook", "url": "https://crm.invalid/hooks", "enabled": "on"}
    response = editor.post(reverse("tailored_destinations:add"), form)
    assert response.status_code == 302
    assert Destination.objects.get().url == "https://crm.invalid/hooks"


@pytest.mark.parametrize("value", ["10.0.0.0/8", ["10.0.0.0/33"], [None]])
def test_a_bad_network_setting_is_a_system_check_error(personalization, value):
    personalization(DESTINATION_PRIVATE_NETWORKS=value)
    errors = [error for error in checks.run_checks() if error.id == "tailored.E014"]
    assert len(errors) == 1
    assert "DESTINATION_PRIVATE_NETWORKS" in errors[0].msg
