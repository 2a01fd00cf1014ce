"""The consent banner: an id is issued only after consent; declining stores nothing."""

from __future__ import annotations

import re

import pytest

from cms.models import CategoryPage
from tests.helpers import make_fan, signed_visitor_id

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def test_accepting_issues_a_pseudonymous_id(client):
    response = client.post("/consent/", {"choice": "accept", "next": "/electronics/"})
    assert response.status_code == 303
    assert response["Location"] == "/electronics/"
    assert response.cookies["tl_consent"].value == "analytics.personalization.marketing"
    assert re.fullmatch(r"[0-9a-f]{32}:[^:]+:[^:]+", response.cookies["tl_vid"].value)  # id:timestamp:signature
    assert response.cookies["tl_vid"]["httponly"]


def test_declining_issues_no_id(client):
    response = client.post("/consent/", {"choice": "decline"})
    assert response.cookies["tl_consent"].value == "none"
    assert "tl_vid" not in response.cookies or response.cookies["tl_vid"].value == ""


def test_withdrawing_consent_erases_the_profile(client, memory_store):
    visitor = "e" * 32
    make_fan(visitor)
    client.cookies["tl_vid"] = signed_visitor_id(visitor)
    client.post("/consent/", {"choice": "decline"})
    assert memory_store.get(visitor, 0).page_views == 0


def test_open_redirects_are_refused(client):
    response = client.post("/consent/", {"choice": "accept", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_an_unknown_choice_is_a_400(client):
    response = client.post("/consent/", {"choice": "maybe"})
    assert response.status_code == 400
    assert "accept" in response.content.decode()


def test_the_json_api_sets_categories(client):
    response = client.post("/consent/", {"analytics": True, "personalization": False}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"granted": ["analytics"]}
    assert response.cookies["tl_consent"].value == "analytics"


@pytest.mark.parametrize(("body", "error"), [("{", "malformed_json"), ('{"analytics": "yes"}', "invalid_consent")])
def test_the_json_api_rejects_bad_input(client, body, error):
    response = client.post("/consent/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_the_consent_script_is_told_when_the_browser_opts_out(client):
    """The banner is hidden in the browser (tests/e2e/test_consent_state.py); a header the
    browser does not expose to scripts is passed to the script, and shared pages vary on it."""
    opted_out = client.get("/", HTTP_SEC_GPC="1")
    asked = client.get("/")
    assert "o=true||n.globalPrivacyControl" in opted_out.content.decode()
    assert "o=false||n.globalPrivacyControl" in asked.content.decode()
    shared = client.get(CategoryPage.objects.live().first().url)  # no personalized block: shared
    assert shared["Cache-Control"] == "public, max-age=0, s-maxage=300"
    assert {"Sec-GPC", "DNT"} <= {v.strip() for v in shared["Vary"].split(",")}


@pytest.mark.parametrize(
    ("meta", "opted_out"),
    [
        ({"HTTP_SEC_GPC": "1"}, True),
        ({"HTTP_SEC_GPC": "1, 1"}, True),  # sent twice: joined by a comma before the app sees it
        ({"HTTP_DNT": "0,1"}, True),
        ({"HTTP_DNT": "0"}, False),
        ({"HTTP_SEC_GPC": "11"}, False),
        ({}, False),
    ],
)
def test_a_privacy_header_sent_twice_still_opts_out(meta, opted_out):
    from tailored.context.privacy_signals import browser_opts_out

    assert browser_opts_out(meta) is opted_out
