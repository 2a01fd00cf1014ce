"""Purchases and revenue come from the server only (issue 14 item 9): a browser that sends one
to POST /api/events or trackEvents is refused with `untrusted_purchase`, and nothing of it
reaches the profile, the segments, the experiments or the global holdout; a purchase recorded
by Python code (services.purchase_event) or sent with an API key still counts."""

from __future__ import annotations

import json
import time

import pytest

from tailored import conf, services
from tailored.experiments.counting import counters
from tailored.server_visitors import create_api_key
from tests.conftest import DESKTOP_UA
from tests.experiments.conftest import make_experiment, running, visitor_in
from tests.helpers import consent_cookies, experiment_cache_cleared
from tests.holdout.conftest import pending, visitor_ids

pytestmark = pytest.mark.django_db

VARIANT_ARMS = [("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})]
HIGH_VALUE = "high-value-customers"  # the demo segment: lifetime value over 500
TRACK = "mutation Track($events: [GenericScalar!]!) { trackEvents(events: $events) { stored errors { code index field message } } }"

fresh_experiment_cache = pytest.fixture(autouse=True, name="fresh_experiment_cache")(experiment_cache_cleared)


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def purchase(order_id: str = "o1", value: float = 999_999_999) -> dict:
    return {"type": "purchase", "id": f"order-{order_id}", "ts": int(time.time() * 1000), "order_id": order_id, "value": value}


def page_view(event_id: str = "p1") -> dict:
    return {"type": "page_view", "id": event_id, "ts": int(time.time() * 1000), "category": "electronics"}


def post(client, *events: dict, **headers):
    return client.post("/api/events", json.dumps({"events": list(events)}), content_type="application/json", **headers)


def held_value(visitor_id: str) -> tuple[int, float]:
    profile = conf.get_profile_store().get(visitor_id, time.time())
    return profile.purchases, profile.lifetime_value


def record_server_purchase(client, order_id: str, value: float) -> None:
    """What an order-completed hook does: record the purchase for the visitor of a request."""
    visitor = services.resolve_visitor(client.get("/").wsgi_request)
    services.record_events(visitor, [services.purchase_event(order_id, value)])


def purchase_conversions(key: str) -> dict[str, int]:
    """The experiment's counted, not yet flushed, purchase conversions per arm."""
    return {arm: n for (_, arm, goal, stat), n in counters().pending(key).items() if stat == "c" and goal == "purchase"}


def segments_now(client) -> list[str]:
    return services.resolve_visitor(client.get("/").wsgi_request).segments


def test_a_browser_purchase_is_refused_and_counts_nowhere_while_a_server_purchase_counts(client):
    make_experiment(arms=VARIANT_ARMS, goals="purchase")
    visitor_id = visitor_in(running("hero-test"), "electronics")
    consent_cookies(client, visitor_id)
    client.get("/")  # exposed to the experiment, so a purchase would convert
    response = post(client, purchase())
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "untrusted_purchase"
    assert "purchase_event" in body["message"] and "X-Tailored-Key" in body["message"]
    assert body["rejected"] == [{"index": 0, "field": "type", "reason": body["message"]}]
    assert held_value(visitor_id) == (0, 0.0)
    assert HIGH_VALUE not in segments_now(client)
    assert purchase_conversions("hero-test") == {}
    record_server_purchase(client, "A-1", 650.0)
    assert held_value(visitor_id) == (1, 650.0)
    assert HIGH_VALUE in segments_now(client)
    assert purchase_conversions("hero-test") == {"electronics": 1}


def test_a_browser_purchase_is_no_holdout_conversion(client, settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GLOBAL_HOLDOUT_PERCENT": 50}
    held = visitor_ids(held=True)[0]
    consent_cookies(client, held)
    client.get("/")  # exposed: held out
    assert post(client, purchase()).status_code == 403
    assert pending("c", "purchase") == {}
    record_server_purchase(client, "A-2", 20.0)
    assert pending("c", "purchase") == {"holdout": 1}


def test_a_batch_with_a_purchase_is_refused_whole(client):
    consent_cookies(client, "d" * 32)
    response = post(client, page_view(), purchase())
    assert response.status_code == 403
    assert [r["index"] for r in response.json()["rejected"]] == [1]
    assert conf.get_profile_store().get("d" * 32, time.time()).page_views == 0  # nothing stored


def test_track_events_refuses_a_browser_purchase(client):
    consent_cookies(client, "d" * 32)
    response = client.post("/graphql/", {"query": TRACK, "variables": {"events": [page_view(), purchase()]}}, content_type="application/json")
    result = response.json()["data"]["trackEvents"]
    assert result["stored"] == 0
    assert [(e["code"], e["index"], e["field"]) for e in result["errors"]] == [("untrusted_purchase", 1, "type")]
    assert "purchase_event" in result["errors"][0]["message"]
    assert held_value("d" * 32) == (0, 0.0)


def test_a_server_with_an_api_key_may_send_purchases(client):
    headers = {
        "HTTP_X_TAILORED_KEY": create_api_key("Checkout")[1],
        "HTTP_X_TAILORED_VISITOR": "e" * 32,
        "HTTP_X_TAILORED_CONTEXT": json.dumps({"user_agent": DESKTOP_UA, "consent": {"analytics": True, "personalization": True}}),
    }
    response = post(client, purchase("B-1", 720.0), **headers)
    assert response.status_code == 202, response.content
    assert held_value("e" * 32) == (1, 720.0)
