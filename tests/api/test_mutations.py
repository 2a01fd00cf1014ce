"""Mutations: trackEvents validates like /api/events; setConsent and eraseMyData set the same cookies."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tailored import conf
from tailored.events.stream import erased_digest
from tailored.models import DataRightsAudit
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
VISITOR = "7" * 32


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def run(client, name: str, **variables):
    response = client.post("/graphql/", {"query": (OPERATIONS / f"{name}.graphql").read_text(), "variables": variables}, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    return response, next(iter(body["data"].values()))


def event(event_id: str, **fields):
    return {"type": "page_view", "id": event_id, "ts": int(time.time() * 1000), "category": "books", **fields}


def test_track_events_stores_the_valid_ones_and_names_the_rest(client):
    consent_cookies(client, VISITOR)
    _, result = run(client, "track_events", events=[event("a"), event("b", category=7), event("a")])
    assert (result["accepted"], result["stored"], result["duplicates"]) == (2, 1, 1)
    assert result["errors"] == [{"code": "invalid_event", "message": "must be a string, got int", "index": 1, "field": "category"}]
    assert conf.get_profile_store().get(VISITOR, time.time()).page_views == 1


def test_track_events_keeps_the_path_of_a_url_only(client):
    consent_cookies(client, VISITOR)
    run(client, "track_events", events=[event("a", url="https://shop.example.com/search/?q=ann%40example.com#results")])
    assert conf.get_profile_store().get(VISITOR, time.time()).visit_landing == "/search/"


def test_track_events_without_consent_stores_nothing(client):
    _, result = run(client, "track_events", events=[event("a")])
    assert result["stored"] == 0
    assert result["errors"][0]["code"] == "consent_required"


def test_set_consent_sets_the_banner_cookies(client):
    response, result = run(client, "set_consent", analytics=True, personalization=True)
    assert result == {"granted": ["analytics", "personalization"], "reason": None, "message": None, "errors": []}
    assert response.cookies["tl_consent"].value == "analytics.personalization"
    assert re.fullmatch(r"[0-9a-f]{32}:[^:]+:[^:]+", response.cookies["tl_vid"].value)  # id:timestamp:signature


@pytest.mark.parametrize("header", ["HTTP_SEC_GPC", "HTTP_DNT"])
def test_set_consent_under_gpc_or_dnt_records_a_decline_and_says_why(client, header):
    response = client.post(
        "/graphql/",
        {"query": (OPERATIONS / "set_consent.graphql").read_text(), "variables": {"analytics": True, "personalization": True}},
        content_type="application/json",
        **{header: "1"},
    )
    result = response.json()["data"]["setConsent"]
    assert (result["granted"], result["reason"], result["errors"]) == ([], "opted_out_by_browser", [])
    assert "Global Privacy Control" in result["message"]
    assert response.cookies["tl_consent"].value == "none"
    assert response.cookies["tl_vid"].value == ""  # deleted, never issued


def test_erase_my_data_erases_and_forgets(client):
    consent_cookies(client, VISITOR)
    run(client, "track_events", events=[event("a")])
    response, result = run(client, "erase_my_data")
    assert result == {"erasedEvents": 0, "errors": []}
    assert response.cookies["tl_vid"].value == ""
    assert conf.get_profile_store().get(VISITOR, time.time()).page_views == 0
    # The audit row names the visitor by a one-way digest only: erasure leaves no raw id behind.
    assert DataRightsAudit.objects.filter(action="erase", visitor_id=erased_digest(VISITOR)).exists()
    assert not DataRightsAudit.objects.filter(visitor_id=VISITOR).exists()
