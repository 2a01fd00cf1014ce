"""Redis down or hung: the visitor-facing endpoints answer a JSON 503 with Retry-After and a stable
`error` code, GraphQL a typed `unavailable` error, and consent can always be withdrawn: the
cookie goes at once, the erasure waits in the database until Redis is back (issue 14 item 2)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tailored import conf, erasure
from tailored.models import PendingErasure
from tests.helpers import consent_cookies, make_fan
from tests.redis_server import guarded_settings, own_redis  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

VISITOR = "c" * 32
OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"


@pytest.fixture
def site(settings, own_redis, client):  # noqa: F811
    """The demo site on a Redis of this test's own, with a consenting visitor who has a profile."""
    settings.PERSONALIZATION = guarded_settings(own_redis, REDIS_BREAKER_COOLDOWN_SECONDS=0.3)
    make_fan(VISITOR)
    consent_cookies(client, VISITOR)
    return own_redis


def page_view(event_id: str) -> dict:
    return {"type": "page_view", "id": event_id, "ts": int(time.time() * 1000), "category": "books"}


def assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "unavailable"
    assert int(response["Retry-After"]) > 0
    assert "127.0.0.1" not in response.content.decode()  # no internals


def held(visitor_id: str = VISITOR) -> int:
    return conf.get_profile_store().get(visitor_id, time.time()).page_views


@pytest.mark.parametrize("outage", ["kill", "pause"])
def test_the_events_endpoint_answers_503_while_redis_is_down_or_hung(client, site, outage):
    getattr(site, outage)()
    body = json.dumps({"events": [page_view("x1")]})
    assert_unavailable(client.post("/api/events", data=body, content_type="application/json"))
    # The batch is refused whole, so tracker.js keeps it; resent after recovery it is stored.
    site.resume() if outage == "pause" else site.start()
    time.sleep(0.5)
    client.get("/")  # a page after the cool-down: the probe has found Redis back
    deadline = time.monotonic() + 5
    while (response := client.post("/api/events", data=body, content_type="application/json")).status_code == 503:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert response.status_code == 202 and response.json()["stored"] == 1


def test_data_rights_answer_503_while_redis_is_down(client, site):
    site.kill()
    assert_unavailable(client.get("/api/me/data"))
    assert_unavailable(client.delete("/api/me"))


def test_consent_withdrawal_works_without_redis_and_the_erasure_follows(client, site):
    site.kill()
    response = client.post("/consent/", data=json.dumps({"analytics": False, "personalization": False}), content_type="application/json")
    assert response.status_code == 200 and response.json() == {"granted": []}
    assert response.cookies["tl_vid"].value == ""  # the id is forgotten at once
    assert response.cookies["tl_consent"].value == "none"
    assert PendingErasure.objects.filter(visitor_id=VISITOR).exists()

    site.start()  # the profile survived (append-only file); it must not survive the queue
    time.sleep(0.5)
    erasure._erasure_clock.reset()
    deadline = time.monotonic() + 5
    while PendingErasure.objects.exists():  # the worker's turn completes it once Redis answers
        assert time.monotonic() < deadline
        erasure.complete_erasures_due()
        erasure._erasure_clock.reset()
        time.sleep(0.2)
    assert held() == 0


def test_a_queued_erasure_is_completed_by_the_next_request_that_finds_redis_healthy(client, site):
    site.kill()
    response = client.post("/consent/", {"choice": "decline", "next": "/"})
    assert response.status_code == 303 and response.cookies["tl_vid"].value == ""
    site.start()
    other = "d" * 32
    consent_cookies(client, other)  # any visitor's page will do
    deadline = time.monotonic() + 5
    while PendingErasure.objects.exists():
        assert time.monotonic() < deadline
        client.get("/")
        time.sleep(0.2)
    assert held() == 0


def test_graphql_track_events_gives_a_typed_unavailable_error_without_internals(client, site):
    site.pause()
    query = (OPERATIONS / "track_events.graphql").read_text()
    response = client.post("/graphql/", {"query": query, "variables": {"events": [page_view("g1")]}}, content_type="application/json")
    body = response.json()
    assert "errors" not in body, body
    result = next(iter(body["data"].values()))
    assert result["stored"] == 0
    assert [error["code"] for error in result["errors"]] == ["unavailable"]
    assert "127.0.0.1" not in response.content.decode() and "Timeout" not in response.content.decode()
