"""Impressions and decided clicks (issue 17 item 1): the SSR wrapper carries the decision tracker.js
sends, and the one event schema (the events API and trackEvents) accepts and checks them."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.helpers import HOME_BLOCK, consent_cookies

pytestmark = pytest.mark.django_db

VISITOR = "b" * 32
WRAPPER = re.compile(r'<div class="tl-personalized"[^>]*>')


@pytest.fixture(autouse=True)
def _fresh_store(memory_store):
    return memory_store


def impression(event_id="i1", **fields):
    event = {"type": "impression", "id": event_id, "ts": int(time.time() * 1000), "block": HOME_BLOCK, "variant": "fallback", "seconds": 1.4}
    return {**event, **fields}


def post(client, *events):
    consent_cookies(client, VISITOR)
    return client.post("/api/events", data=json.dumps({"events": list(events)}), content_type="application/json")


def test_the_homepage_block_names_its_stream_block_and_page(client):
    from cms.models import HomePage

    html = client.get("/").content.decode()
    wrapper = WRAPPER.search(html).group(0)
    assert f'data-tl-block-id="{HOME_BLOCK}"' in wrapper
    assert f'data-tl-page="{HomePage.objects.live().first().pk}"' in wrapper
    assert 'data-tl-variant="fallback"' in wrapper


def test_an_impression_with_its_decision_is_accepted(client):
    response = post(client, impression(experiment="hero-test", arm="b", page=3))
    assert response.status_code == 202, response.json()
    assert response.json()["stored"] == 1


def test_a_click_may_carry_the_blocks_decision(client):
    click = {"type": "click", "id": "c1", "ts": int(time.time() * 1000), "target": "link", "block": HOME_BLOCK, "variant": "fallback"}
    assert post(client, click).status_code == 202


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"block": None}, "block", "this field is required"),
        ({"block": "not a block id!"}, "block", "has an invalid format"),
        ({"seconds": -1}, "seconds", "must be at least 0"),
        ({"variant": "v" * 65}, "variant", "must have at most 64 characters"),
        ({"page": 0}, "page", "must be at least 1"),
        ({"colour": "red"}, "colour", "unexpected field for impression"),
    ],
)
def test_a_malformed_impression_is_rejected_with_its_field(client, fields, field, reason):
    event = {k: v for k, v in impression(**fields).items() if v is not None}
    response = post(client, event)
    assert response.status_code == 400
    rejected = response.json()["rejected"][0]
    assert rejected["field"] == field and rejected["reason"].startswith(reason)


def test_without_consent_an_impression_stores_nothing(client):
    client.cookies["tl_consent"] = "none"
    response = client.post("/api/events", data=json.dumps({"events": [impression()]}), content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "consent_required"


def test_a_headless_frontend_reports_impressions_of_its_decisions_through_track_events(client):
    """The same events, sent by a headless frontend: extensions.decisions as trackEvents fields."""
    from pathlib import Path

    operations = Path(__file__).parents[2] / "graphql" / "operations"
    consent_cookies(client, VISITOR)
    page = client.post("/graphql/", {"query": (operations / "homepage.graphql").read_text()}, content_type="application/json").json()
    decisions = page["extensions"]["decisions"]
    events = [
        {"type": "impression", "id": f"h{i}", "ts": int(time.time() * 1000), "seconds": 1.2,
         **{k: v for k, v in d.items() if k in ("block", "variant", "experiment", "arm") and v is not None}}
        for i, d in enumerate(decisions)
    ]
    document = (operations / "track_events.graphql").read_text()
    answer = client.post("/graphql/", {"query": document, "variables": {"events": events}}, content_type="application/json").json()
    assert answer["data"]["trackEvents"] == {"accepted": len(events), "stored": len(events), "duplicates": 0, "errors": []}
    bad = [{**events[0], "id": "bad", "block": "no spaces allowed"}]
    answer = client.post("/graphql/", {"query": document, "variables": {"events": bad}}, content_type="application/json").json()
    assert answer["data"]["trackEvents"]["errors"][0]["field"] == "block"
