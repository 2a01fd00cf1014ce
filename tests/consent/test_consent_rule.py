"""One consent rule (issue 15 item 3): the /consent/ form, its JSON (tracker.js), GraphQL
setConsent and a server with an API key all answer the same. Under Sec-GPC: 1 or DNT: 1 (for a
server, "gpc" in X-Tailored-Context) an accept is recorded as declined, no id is issued, and the
answer says why; without the signal the accept is recorded as given."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tailored.server_visitors import create_api_key, forget_api_keys
from tests.helpers import consent_cookies, make_fan

from .conftest import redis_keys, visitor_id_of

pytestmark = pytest.mark.django_db

SET_CONSENT = (Path(__file__).parents[2] / "graphql" / "operations" / "set_consent.graphql").read_text()
SIGNALS = {"sec-gpc": {"HTTP_SEC_GPC": "1"}, "dnt": {"HTTP_DNT": "1"}, "none": {}}
OPTED_OUT_SENTENCE = "Your browser sends Global Privacy Control or Do Not Track"


@pytest.fixture
def api_key():
    forget_api_keys()
    yield create_api_key("frontend")[1]
    forget_api_keys()


def accept_by_form(client, headers):
    response = client.post("/consent/", {"choice": "accept", "next": "/electronics/"}, **headers)
    assert response.status_code == 303
    reason = "opted_out_by_browser" if "notice=opted_out_by_browser" in response["Location"] else None
    return response, reason


def accept_by_json(client, headers):
    body = json.dumps({"analytics": True, "personalization": True})
    response = client.post("/consent/", body, content_type="application/json", **headers)
    assert response.status_code == 200
    return response, response.json().get("reason")


def accept_by_graphql(client, headers):
    query = {"query": SET_CONSENT, "variables": {"analytics": True, "personalization": True}}
    response = client.post("/graphql/", query, content_type="application/json", **headers)
    return response, response.json()["data"]["setConsent"]["reason"]


PATHS = {"form": accept_by_form, "json": accept_by_json, "graphql": accept_by_graphql}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("signal", ["sec-gpc", "dnt"])
def test_under_gpc_or_dnt_every_path_records_a_decline_and_says_why(client, backend, path, signal):
    response, reason = PATHS[path](client, SIGNALS[signal])
    assert reason == "opted_out_by_browser"
    assert response.cookies["tl_consent"].value == "none"
    assert visitor_id_of(client) is None  # no id issued
    assert redis_keys(backend) in (None, [])


@pytest.mark.parametrize("path", PATHS)
def test_without_a_signal_every_path_records_the_accept(client, path):
    response, reason = PATHS[path](client, {})
    assert reason is None
    # "Accept all" on the banner grants every category; the JSON and GraphQL calls here ask two.
    expected = "analytics.personalization.marketing" if path == "form" else "analytics.personalization"
    assert response.cookies["tl_consent"].value == expected
    assert visitor_id_of(client) is not None


def test_the_json_answer_carries_the_sentence_for_people(client):
    body = json.dumps({"analytics": True, "personalization": False})
    answer = client.post("/consent/", body, content_type="application/json", HTTP_SEC_GPC="1").json()
    assert answer["granted"] == [] and answer["message"].startswith(OPTED_OUT_SENTENCE)


def test_the_html_form_lands_on_the_privacy_centre_which_says_why(client):
    response = client.post("/consent/", {"choice": "accept", "next": "/"}, HTTP_DNT="1", follow=True)
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == "/privacy-centre/?notice=opted_out_by_browser"
    assert OPTED_OUT_SENTENCE in html and "your answer was recorded as declined" in html


@pytest.mark.parametrize("signal", ["gpc-field", "sec-gpc-header"])
def test_a_server_acting_for_its_visitor_gets_the_same_answer(client, api_key, signal):
    context = {"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0", "gpc": signal == "gpc-field"}
    headers = {"HTTP_X_TAILORED_KEY": api_key, "HTTP_X_TAILORED_CONTEXT": json.dumps(context)}
    headers.update(SIGNALS["sec-gpc"] if signal == "sec-gpc-header" else {})
    response, reason = accept_by_graphql(client, headers)
    assert reason == "opted_out_by_browser"
    assert response.cookies["tl_consent"].value == "none" and visitor_id_of(client) is None


def test_a_server_without_the_signal_records_the_accept(client, api_key):
    headers = {"HTTP_X_TAILORED_KEY": api_key, "HTTP_X_TAILORED_CONTEXT": json.dumps({"gpc": False})}
    response, reason = accept_by_graphql(client, headers)
    assert reason is None and response.cookies["tl_consent"].value == "analytics.personalization"


def test_an_accept_under_gpc_withdraws_an_earlier_accept_and_erases_it(client, backend):
    visitor = "c" * 32
    make_fan(visitor)
    consent_cookies(client, visitor)
    accept_by_json(client, SIGNALS["sec-gpc"])
    assert backend.get(visitor, time.time()).page_views == 0
    assert client.cookies["tl_vid"].value == ""  # deleted
    assert redis_keys(backend, f"*{visitor}*") in (None, [])


def test_the_banner_form_saves_the_categories_checked(client):
    response = client.post("/consent/", {"choice": "save", "analytics": "on", "next": "/"})
    assert response.status_code == 303 and response["Location"] == "/"
    assert response.cookies["tl_consent"].value == "analytics"
    assert visitor_id_of(client) is not None


def test_the_banner_form_declines_everything(client):
    response = client.post("/consent/", {"choice": "decline", "analytics": "on", "personalization": "on"})
    assert response.cookies["tl_consent"].value == "none" and visitor_id_of(client) is None


@pytest.mark.parametrize("headers", [{"HTTP_SEC_FETCH_SITE": "cross-site"}, {"HTTP_ORIGIN": "https://evil.example"}])
def test_another_site_cannot_answer_for_the_visitor(client, headers):
    form = client.post("/consent/", {"choice": "accept"}, **headers)
    body = json.dumps({"analytics": True, "personalization": True})
    script = client.post("/consent/", body, content_type="application/json", **headers)
    for response in (form, script):
        assert response.status_code == 403 and not response.cookies


def test_declining_deletes_every_cookie_consent_allowed_but_the_answer(client):
    client.post("/consent/", {"choice": "accept"})
    client.cookies["tl_tz"] = "Europe%2FLondon"
    client.cookies["csrftoken"] = "x" * 32  # set by the onboarding survey, shown after consent
    response = client.post("/consent/", {"choice": "decline"})
    assert {name: morsel.value for name, morsel in response.cookies.items()} == {
        "tl_consent": "none", "tl_vid": "", "tl_tz": "", "csrftoken": "",
    }
