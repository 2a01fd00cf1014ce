"""Ingestion fuzzed with arbitrary JSON: never a 500, and the profile stays readable and consistent."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailored import conf
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

VISITOR = "9" * 32
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
near_valid_event = st.fixed_dictionaries(
    {"type": st.sampled_from(["page_view", "click", "add_to_cart", "purchase", "dwell", "scroll_depth", "search", "x"]),
     "id": st.text(alphabet="abc-_1", min_size=1, max_size=8)},
    optional={
        "ts": st.integers(min_value=0, max_value=2**53) | st.just(int(time.time() * 1000)),
        "product_id": st.integers(min_value=-2, max_value=10**12) | st.text(max_size=3),
        "category": st.sampled_from(["books", "Books", "", "a" * 70]) | json_values,
        "quantity": st.integers(min_value=-5, max_value=2000),
        "value": st.floats(allow_nan=True, allow_infinity=True) | st.integers(),
        "order_id": st.text(max_size=5), "seconds": st.floats() | st.integers(), "depth": st.integers(0, 120),
        "query": st.text(max_size=10), "target": st.text(max_size=5),
    },
)
bodies = (
    st.builds(lambda events: json.dumps({"events": events}), st.lists(near_valid_event, min_size=1, max_size=8))
    | st.builds(json.dumps, json_values)
    | st.binary(max_size=64)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_any_body_gets_a_clear_answer_and_keeps_the_profile_sound(client, use_redis_store, body):
    consent_cookies(client, VISITOR)
    response = client.post("/api/events", body, content_type="application/json")
    refused_purchase = response.status_code == 403 and response.json()["error"] == "untrusted_purchase"
    assert response.status_code in (202, 207, 400) or refused_purchase, response.content
    assert "error" in response.json() or "accepted" in response.json()
    profile = conf.get_profile_store().get(VISITOR, time.time())
    assert profile.purchases == 0 and profile.lifetime_value == 0  # a browser never sets revenue
    assert profile.page_views >= 0 and all(q > 0 for q in profile.cart.values())
    assert sum(profile.event_counts.values()) >= profile.page_views
    assert client.get("/").status_code == 200
