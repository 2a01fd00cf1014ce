"""POST /api/events: consenting visitors' batches are stored whole; anything else stores nothing."""

from __future__ import annotations

import json
import time

import pytest

from tailored import conf
from tests.helpers import signed_visitor_id

pytestmark = pytest.mark.django_db

VISITOR = "a" * 32
CONSENTED = {"tl_consent": "analytics.personalization", "tl_vid": signed_visitor_id(VISITOR)}


def page_view(event_id="e1", **fields):
    return {"type": "page_view", "id": event_id, "ts": int(time.time() * 1000), "category": "electronics", **fields}


def post(client, body, cookies=CONSENTED, **headers):
    for name, value in cookies.items():
        client.cookies[name] = value
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/events", data=data, content_type="application/json", **headers)


def stored_page_views() -> int:
    return conf.get_profile_store().get(VISITOR, time.time()).page_views


@pytest.fixture(autouse=True)
def _fresh_store(memory_store):
    return memory_store


def test_a_good_batch_is_stored(client):
    response = post(client, {"events": [page_view("e1"), page_view("e2", product_id=3)]})
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "stored": 2, "duplicates": 0, "rejected": []}
    assert stored_page_views() == 2


def test_a_partly_bad_batch_stores_the_good_events_and_answers_207(client):
    response = post(client, {"events": [page_view("e1"), page_view("e2", category=7), page_view("e3")]})
    assert response.status_code == 207
    assert response.json()["rejected"] == [{"index": 1, "field": "category", "reason": "must be a string, got int"}]
    assert response.json()["stored"] == 2
    assert stored_page_views() == 2


def test_a_batch_with_no_valid_event_is_a_400(client):
    response = post(client, {"events": [page_view("e1", category=7)]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_events"
    assert response.json()["rejected"][0]["field"] == "category"
    assert stored_page_views() == 0


def test_resending_a_batch_stores_it_once(client):
    post(client, {"events": [page_view("e1"), page_view("e2")]})
    again = post(client, {"events": [page_view("e1"), page_view("e2")]})
    assert again.status_code == 202
    assert again.json()["duplicates"] == 2
    assert stored_page_views() == 2


def test_past_the_rate_limit_the_answer_is_429(client, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RATE_LIMIT_PER_MINUTE": 3}
    assert post(client, {"events": [page_view("e1"), page_view("e2")]}).status_code == 202
    response = post(client, {"events": [page_view("e3"), page_view("e4")]})
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert stored_page_views() == 2


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{oops", "malformed_json"),
        ({"events": [page_view(f"e{i}") for i in range(101)]}, "batch_too_large"),
        ({"events": [page_view(url="/" + "x" * 70_000)]}, "body_too_large"),
        ({"events": [{"type": "nope", "id": "x", "ts": 1}]}, "invalid_events"),
    ],
)
def test_bad_requests_get_a_400_with_a_json_reason(client, body, error):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert stored_page_views() == 0


def test_without_consent_nothing_is_stored(client):
    response = post(client, {"events": [page_view()]}, cookies={"tl_vid": signed_visitor_id(VISITOR)})
    assert response.status_code == 403
    assert response.json()["error"] == "consent_required"
    assert stored_page_views() == 0


def test_global_privacy_control_overrides_consent(client):
    response = post(client, {"events": [page_view()]}, HTTP_SEC_GPC="1")
    assert response.status_code == 403
    assert stored_page_views() == 0


def test_cross_site_posts_are_refused(client):
    response = post(client, {"events": [page_view()]}, HTTP_ORIGIN="https://evil.example", HTTP_SEC_FETCH_SITE="cross-site")
    assert response.status_code == 403
    assert response.json()["error"] == "cross_site"
    assert stored_page_views() == 0


def test_only_post_is_allowed(client):
    assert client.get("/api/events").status_code == 405


def test_events_reach_a_real_redis(client, use_redis_store, redis_client):
    response = post(client, {"events": [page_view()]})
    assert response.status_code == 202
    assert redis_client.hget(f"tl:v1:{{{VISITOR}}}:p", "page_views") == "1"


def test_bots_are_never_tracked(client):
    response = post(client, {"events": [page_view()]}, HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert response.status_code == 403
    assert response.json()["error"] == "not_tracked"
    assert stored_page_views() == 0
