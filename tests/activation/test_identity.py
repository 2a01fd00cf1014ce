"""Identity for activation (issue 20 item 3): POST /api/identify, marketing consent, logins, and
what export and erasure do with identities, sends and trigger states."""

from __future__ import annotations

import json
import time

import pytest
from django.utils import timezone

from tailored.activation import identity, triggers
from tailored.activation.models import ActivationSend, Destination, KnownVisitor
from tailored.erasure import erase_visitor, export_visitor
from tailored.services import user_visitor_id
from tests.activation.conftest import make_trigger
from tests.helpers import signed_visitor_id

pytestmark = pytest.mark.django_db
VISITOR = "d" * 32


def identify(client, body, consent="analytics.personalization.marketing", **headers):
    client.cookies["tl_consent"] = consent
    client.cookies["tl_vid"] = signed_visitor_id(VISITOR)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/identify", data=data, content_type="application/json", **headers)


def test_identify_keeps_the_address_in_clear_only_with_marketing_consent(client, memory_store):
    response = identify(client, {"email": "  Ada@Example.com "})
    assert (response.status_code, response.json()) == (200, {"identified": True, "email_kept": True})
    row = KnownVisitor.objects.get(visitor_id=VISITOR)
    assert (row.email, row.marketing) == ("ada@example.com", True)
    assert row.email_hash == identity.email_hash("ADA@example.com") and "ada" not in row.email_hash

    response = identify(client, {"email": "ada@example.com"}, consent="analytics.personalization")
    assert response.json() == {"identified": True, "email_kept": False}
    row.refresh_from_db()
    assert (row.email, row.marketing, row.email_hash) == ("", False, identity.email_hash("ada@example.com"))


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({"email": "not an address"}, 400, "invalid_email", "'not an address' is not an email address"),
        ({"email": ""}, 400, "invalid_email", "email must be a non-empty string"),
        ({"email": 7}, 400, "invalid_email", "email must be a non-empty string"),
        ({"email": "a@b.co", "name": "Ada"}, 400, "invalid_body", 'expected {"email": "<address>"} and nothing else'),
        ([], 400, "invalid_body", 'expected {"email": "<address>"} and nothing else'),
        ({"email": "x" * 3000}, 413, "too_large", "the body must be at most 2048 bytes"),
    ],
)
def test_identify_refuses_what_is_not_one_address_and_stores_nothing(client, memory_store, body, status, code, message):
    response = identify(client, body)
    assert response.status_code == status
    assert (response.json()["error"], response.json()["message"]) == (code, message)
    assert not KnownVisitor.objects.exists()


def test_identify_without_consent_or_under_gpc_stores_nothing(client, memory_store):
    assert identify(client, {"email": "ada@example.com"}, consent="none").status_code == 403
    assert identify(client, {"email": "ada@example.com"}, HTTP_SEC_GPC="1").status_code == 403
    assert not KnownVisitor.objects.exists()


def test_a_get_is_refused(client, memory_store):
    assert client.get("/api/identify").status_code == 405


def test_withdrawing_marketing_forgets_the_address_and_keeps_the_profile(client, memory_store):
    identify(client, {"email": "ada@example.com"})
    destination = Destination.objects.create(name="Hook", kind="webhook", url="http://127.0.0.1:9/")
    ActivationSend.objects.create(
        destination=destination, visitor_id=VISITOR, idempotency_key="k1", payload={}, next_attempt_at=timezone.now()
    )
    response = client.post(
        "/consent/", data=json.dumps({"analytics": True, "personalization": True, "marketing": False}),
        content_type="application/json",
    )
    assert response.status_code == 200
    row = KnownVisitor.objects.get(visitor_id=VISITOR)
    assert (row.email, row.marketing) == ("", False)
    assert ActivationSend.objects.get().status == "skipped"
    assert client.cookies["tl_vid"].value  # the profile's id stays: marketing alone stored nothing


def test_logging_in_makes_the_visitor_known_with_their_account(client, memory_store, django_user_model):
    user = django_user_model.objects.create_user("ada", email="Ada@Example.com", password="pw-123456-x")
    client.cookies["tl_consent"] = "analytics.personalization.marketing"
    client.cookies["tl_vid"] = signed_visitor_id(VISITOR)
    response = client.post("/admin/login/", {"username": "ada", "password": "pw-123456-x"})
    assert response.status_code == 302
    row = KnownVisitor.objects.get(visitor_id=user_visitor_id(user.pk))
    assert (row.user_id, row.email, row.marketing) == (str(user.pk), "ada@example.com", True)


def test_export_and_erasure_cover_identity_sends_and_trigger_state(activation, client):
    identify(client, {"email": "ada@example.com"})
    destination = Destination.objects.create(name="Hook", kind="webhook", url="http://127.0.0.1:9/")
    trigger = make_trigger(destination, "cart_abandoned", params={"minutes": 30})
    ActivationSend.objects.create(
        trigger=trigger, destination=destination, visitor_id=VISITOR, idempotency_key="k1",
        payload={"reason": {"idle_minutes": 30}}, next_attempt_at=timezone.now(),
    )
    activation.hset(triggers.state_key(VISITOR), mapping={str(trigger.pk): 1})
    activation.zadd(triggers.DUE_KEY, {f"{trigger.pk}|{VISITOR}|": time.time(), f"{trigger.pk}|{'e' * 32}|": time.time()})

    exported = export_visitor(VISITOR, consent=None)["activation"]
    assert exported["identity"]["email"] == "ada@example.com"
    assert exported["identity"]["email_stored_in_clear"] is True
    assert [(s["trigger"], s["destination"], s["status"], s["payload"]) for s in exported["sends"]] == [
        ("cart_abandoned", "Hook", "pending", {"reason": {"idle_minutes": 30}})
    ]

    detail = erase_visitor(VISITOR)
    assert (detail["identities"], detail["activation_sends"], detail["trigger_states"]) == (1, 1, 2)
    assert not KnownVisitor.objects.filter(visitor_id=VISITOR).exists()
    assert not ActivationSend.objects.filter(visitor_id=VISITOR).exists()
    assert not activation.exists(triggers.state_key(VISITOR))
    assert activation.zrange(triggers.DUE_KEY, 0, -1) == [f"{trigger.pk}|{'e' * 32}|"]  # another visitor's check stays
