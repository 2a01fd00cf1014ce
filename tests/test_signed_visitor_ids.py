"""Visitor ids cannot be forged (issue 14 item 7): the `tl_vid` cookie is signed, a made-up or
unsigned id is a new visitor, browsers never read their id through GraphQL, and the key behind
it is never the published default."""

from __future__ import annotations

import json
import os
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.test import RequestFactory, override_settings
from django.utils import timezone

from cms.settings.base import installation_secret_key
from tailored import conf
from tailored.models import DataRightsAudit, Event
from tailored.server_visitors import create_api_key
from tailored.services import VISITOR_COOKIE_SALT, VISITOR_ID, user_visitor_id
from tests.helpers import CONSENT_GRANTED, make_fan, signed_visitor_id

pytestmark = pytest.mark.django_db

VICTIM = "7" * 32
VISITOR_QUERY = "{ visitor { id segments } }"


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


@pytest.fixture
def victim():
    """A visitor with a profile and a persisted event: what an attacker wants to read or erase."""
    make_fan(VICTIM)
    Event.objects.create(visitor_id=VICTIM, event_id="v1", type="search", ts=timezone.now(), attrs={"query": "divorce lawyer"})
    return VICTIM


def cookie_id(response) -> str:
    """The id inside the `tl_vid` cookie a response set (raises if it is not validly signed)."""
    request = RequestFactory().get("/")
    request.COOKIES["tl_vid"] = response.cookies["tl_vid"].value
    return request.get_signed_cookie("tl_vid", salt=VISITOR_COOKIE_SALT)


@pytest.mark.parametrize("signed_by", [None, "another-sites-key-" + "y" * 40], ids=["unsigned", "other-key"])
def test_a_forged_cookie_is_a_new_visitor_and_exports_nothing_of_the_victim(client, victim, signed_by):
    client.cookies["tl_consent"] = CONSENT_GRANTED
    if signed_by is None:
        client.cookies["tl_vid"] = VICTIM
    else:
        with override_settings(SECRET_KEY=signed_by):
            client.cookies["tl_vid"] = signed_visitor_id(VICTIM)
    response = client.get("/api/me/data")
    assert response.status_code == 200
    data = response.json()
    assert data["visitor_id"] != VICTIM and VISITOR_ID.match(data["visitor_id"])
    assert data["profile"]["page_views"] == 0 and data["events"] == []
    assert "divorce lawyer" not in response.content.decode()
    assert cookie_id(response) == data["visitor_id"]  # the new visitor's own signed id
    assert not DataRightsAudit.objects.filter(visitor_id=VICTIM).exists()


def test_a_forged_cookie_cannot_erase_the_victim(client, victim):
    client.cookies["tl_consent"] = CONSENT_GRANTED
    client.cookies["tl_vid"] = VICTIM
    assert client.delete("/api/me").status_code == 200
    assert conf.get_profile_store().get(VICTIM, time.time()).page_views == 3
    assert Event.objects.filter(visitor_id=VICTIM).count() == 1
    assert not DataRightsAudit.objects.filter(visitor_id=VICTIM).exists()


def test_a_forged_cookie_cannot_withdraw_the_victims_consent(client, victim):
    client.cookies["tl_vid"] = VICTIM
    client.post("/consent/", {"choice": "decline"})
    assert conf.get_profile_store().get(VICTIM, time.time()).page_views == 3


def test_logging_in_with_a_forged_cookie_takes_nothing_from_the_victim(client, victim):
    get_user_model().objects.create_user("mallory", password="pw-mallory-123")
    client.cookies["tl_consent"] = CONSENT_GRANTED
    client.cookies["tl_vid"] = VICTIM
    assert client.post("/admin/login/", {"username": "mallory", "password": "pw-mallory-123"}).status_code == 302
    store = conf.get_profile_store()
    assert store.get(VICTIM, time.time()).page_views == 3
    assert store.get(user_visitor_id(get_user_model().objects.get(username="mallory").pk), time.time()).page_views == 0


def test_a_signed_cookie_round_trips(client):
    response = client.post("/consent/", {"choice": "accept"})
    visitor_id = cookie_id(response)
    assert response.cookies["tl_vid"]["httponly"]
    event = {"type": "page_view", "id": "p1", "ts": int(time.time() * 1000), "category": "electronics"}
    assert client.post("/api/events", json.dumps({"events": [event]}), content_type="application/json").status_code == 202
    data = client.get("/api/me/data").json()
    assert data["visitor_id"] == visitor_id
    assert data["profile"]["page_views"] == 1


def test_rotating_the_secret_key_keeps_visitors_through_the_fallbacks(client, settings, victim):
    client.cookies["tl_consent"] = CONSENT_GRANTED
    client.cookies["tl_vid"] = signed_visitor_id(VICTIM)  # signed with the old key
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    assert client.get("/api/me/data").json()["visitor_id"] == VICTIM
    settings.SECRET_KEY_FALLBACKS = []  # once the old key is dropped, its cookies are no one's
    assert client.get("/api/me/data").json()["visitor_id"] != VICTIM


def test_graphql_hides_the_id_from_browsers_and_gives_it_to_servers(client, victim):
    client.cookies["tl_consent"] = CONSENT_GRANTED
    client.cookies["tl_vid"] = signed_visitor_id(VICTIM)
    browser = client.post("/graphql/", {"query": VISITOR_QUERY}, content_type="application/json").json()["data"]["visitor"]
    assert browser["id"] is None
    assert "electronics-fans" in browser["segments"]  # still the visitor, just not their key
    client.cookies.clear()
    server = client.post(
        "/graphql/", {"query": VISITOR_QUERY}, content_type="application/json",
        HTTP_X_TAILORED_KEY=create_api_key("SSR")[1], HTTP_X_TAILORED_VISITOR=VICTIM,
        HTTP_X_TAILORED_CONTEXT=json.dumps({"consent": {"analytics": True, "personalization": True}}),
    ).json()["data"]["visitor"]
    assert server["id"] == VICTIM


def secret_key_errors() -> list[str]:
    return [message.id for message in run_checks() if message.id == "tailored.E008"]


@pytest.mark.parametrize(
    ("key", "debug", "fires"),
    [("tailored-insecure-development-key", False, True), ("tailored-insecure-development-key", True, False), ("k" * 50, False, False)],
    ids=["default-key", "default-key-in-debug", "own-key"],
)
def test_the_shipped_default_key_is_an_error_outside_debug(settings, key, debug, fires):
    settings.SECRET_KEY, settings.DEBUG = key, debug
    assert secret_key_errors() == (["tailored.E008"] if fires else [])


def test_the_demo_settings_make_one_key_per_install(tmp_path, monkeypatch):
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    path = tmp_path / "var" / "secret_key"
    first = installation_secret_key(path)
    assert len(first) >= 50 and first != "tailored-insecure-development-key"
    assert installation_secret_key(path) == first  # kept across restarts
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert installation_secret_key(tmp_path / "elsewhere" / "secret_key") != first  # another install
    monkeypatch.setenv("DJANGO_SECRET_KEY", "from-the-environment")
    assert installation_secret_key(path) == "from-the-environment"
    assert os.listdir(path.parent) == ["secret_key"]  # no draft left behind
