"""A destination's secret (webhook HMAC key, API bearer token) is write-only in the admin: the
edit page never sends it back, a blank submission keeps it, a new value replaces it and "Remove
the secret" clears it. Sends go to the local receiver, signed (or not) as the form left it."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from tailored import webhooks
from tailored.activation.models import ActivationSend, Destination
from tests.activation.conftest import SECRET, webhook
from tests.activation.test_admin import errors, page_text

pytestmark = pytest.mark.django_db

NEW_SECRET = "a-new-secret-typed-by-the-editor"


def edit_url(destination: Destination) -> str:
    return reverse("tailored_destinations:edit", args=[destination.pk])


def form(destination: Destination, **values) -> dict[str, str]:
    return {"name": destination.name, "kind": destination.kind, "url": destination.url, "enabled": "on", **values}


def send_test(editor, destination: Destination) -> None:
    editor.post(reverse("tailored_destinations:send_test", args=[destination.pk]))
    assert ActivationSend.objects.filter(test=True).latest("pk").status == ActivationSend.Status.DELIVERED


def test_the_edit_page_never_contains_the_secret_and_says_one_is_set(editor):
    destination = webhook("https://crm.example.com/hook")
    response = editor.get(edit_url(destination))
    assert response.status_code == 200
    html = response.content.decode()
    assert SECRET not in html
    page = BeautifulSoup(html, "html.parser")
    field = page.select_one('input[name="secret"]')
    assert (field["type"], field.get("value", "")) == ("password", "")
    assert "A secret is set (it is never shown). Leave this blank to keep it" in page_text(response)
    assert page.select_one('input[type="checkbox"][name="remove_secret"]') is not None


def test_a_destination_without_a_secret_offers_no_removal(editor):
    destination = Destination.objects.create(name="Plain hook", kind="webhook", url="https://crm.example.com/hook")
    page = BeautifulSoup(editor.get(edit_url(destination)).content, "html.parser")
    assert page.select_one('input[name="secret"]') is not None
    assert page.select_one('input[name="remove_secret"]') is None
    assert "A secret is set" not in page.get_text(" ", strip=True)


def test_saving_with_the_secret_blank_keeps_it_and_sends_stay_signed(editor, receiver):
    server = receiver(200)
    destination = webhook(server.url + "/hook")
    response = editor.post(edit_url(destination), form(destination, name="CRM hook (renamed)", secret=""))
    assert response.status_code == 302, errors(response)
    destination.refresh_from_db()
    assert (destination.name, destination.secret) == ("CRM hook (renamed)", SECRET)

    send_test(editor, destination)
    [(_, _, headers, body)] = server.requests
    assert webhooks.verify_signature(SECRET, body, headers["X-Tailored-Signature"])


def test_the_field_left_out_of_the_submission_keeps_the_secret_too(editor):
    destination = webhook("https://crm.example.com/hook")
    response = editor.post(edit_url(destination), form(destination))
    assert response.status_code == 302, errors(response)
    destination.refresh_from_db()
    assert destination.secret == SECRET


def test_a_new_value_replaces_the_secret(editor, receiver):
    server = receiver(200)
    destination = webhook(server.url + "/hook")
    response = editor.post(edit_url(destination), form(destination, secret=NEW_SECRET))
    assert response.status_code == 302, errors(response)
    destination.refresh_from_db()
    assert destination.secret == NEW_SECRET
    assert NEW_SECRET not in editor.get(edit_url(destination)).content.decode()

    send_test(editor, destination)
    [(_, _, headers, body)] = server.requests
    assert webhooks.verify_signature(NEW_SECRET, body, headers["X-Tailored-Signature"])
    assert not webhooks.verify_signature(SECRET, body, headers["X-Tailored-Signature"])


def test_remove_the_secret_clears_it_and_sends_go_unsigned(editor, receiver):
    server = receiver(200)
    destination = webhook(server.url + "/hook")
    response = editor.post(edit_url(destination), form(destination, remove_secret="on"))
    assert response.status_code == 302, errors(response)
    destination.refresh_from_db()
    assert destination.secret == ""

    send_test(editor, destination)
    [(_, _, headers, _)] = server.requests
    assert "X-Tailored-Signature" not in headers


def test_a_new_secret_and_remove_together_are_refused(editor):
    destination = webhook("https://crm.example.com/hook")
    response = editor.post(edit_url(destination), form(destination, secret=NEW_SECRET, remove_secret="on"))
    assert response.status_code == 200
    assert response.context["form"].errors["secret"] == ["Type a new secret or tick “Remove the secret”, not both."]
    assert NEW_SECRET not in response.content.decode()
    destination.refresh_from_db()
    assert destination.secret == SECRET


def test_a_refused_submission_does_not_echo_the_stored_or_the_typed_secret(editor):
    destination = webhook("https://crm.example.com/hook")
    response = editor.post(edit_url(destination), form(destination, url="", secret=NEW_SECRET))
    assert response.status_code == 200
    assert response.context["form"].errors["url"] == ["A signed webhook destination needs the URL it sends to."]
    html = response.content.decode()
    assert SECRET not in html and NEW_SECRET not in html
    destination.refresh_from_db()
    assert destination.secret == SECRET


def test_a_new_destination_stores_the_secret_typed(editor):
    response = editor.post(reverse("tailored_destinations:add"), {
        "name": "CRM API", "kind": "contact_event", "url": "https://crm.example.com/api", "secret": SECRET,
        "enabled": "on",
    })
    assert response.status_code == 302, errors(response)
    assert Destination.objects.get(name="CRM API").secret == SECRET
