"""What each consent category stores (issue 15 item 6), through the site's endpoints on both
stores: nothing without consent; with analytics only, the events (deduplicated, on the stream the
worker persists, counted in experiments) but no profile to target with; with personalization, the
profile too. Giving up a category erases what was held and starts again under a new id."""

from __future__ import annotations

import json
import time

import pytest

from tailored import worker
from tailored.core.types import Window
from tailored.events.stream import STREAM_KEY, decode_entry
from tailored.experiments.counting import counters
from tailored.models import Event as EventRow
from tests.experiments.conftest import make_experiment, running, visitor_in
from tests.helpers import (
    ELECTRONICS_HERO,
    ELECTRONICS_VARIANT,
    FALLBACK_HERO,
    signed_visitor_id,
    ssr_variants,
)

from .conftest import answer_consent, electronics_views, redis_keys, visitor_id_of

pytestmark = pytest.mark.django_db

ELECTRONICS_WINDOW = Window("page_view|c:electronics", 24)


def stream_events_of(store, visitor_id: str) -> list[str]:
    """The ids of the visitor's events waiting on the Redis stream for a worker."""
    events = []
    for _, fields in store.client.xrange(STREAM_KEY):
        owner, batch = decode_entry(fields)
        events += [event.id for event in batch] if owner == visitor_id else []
    return events


def hero_variant(client) -> str:
    return ssr_variants(client.get("/").content.decode())[0]


def test_without_consent_nothing_is_stored(client, backend):
    answer_consent(client)(analytics=False, personalization=False)
    response, _ = electronics_views(client)
    assert response.status_code == 403 and response.json()["error"] == "consent_required"
    assert client.cookies["tl_consent"].value == "none" and visitor_id_of(client) is None
    assert backend.recent_visitors(0, 10) == []
    assert redis_keys(backend) in (None, [])  # Redis: not one key


@pytest.mark.parametrize(
    "send",
    [
        lambda client: client.post(
            "/consent/", json.dumps({"analytics": False, "personalization": False, "marketing": True}), content_type="application/json",
        ),
        lambda client: client.post("/consent/", {"choice": "save", "marketing": "on"}),
    ],
    ids=["json", "form"],
)
def test_marketing_alone_issues_no_id(client, backend, send):
    """Marketing alone stores nothing under an id (events need analytics or personalization)."""
    send(client)
    assert client.cookies["tl_consent"].value == "marketing"
    assert visitor_id_of(client) is None
    response, _ = electronics_views(client)
    assert response.status_code == 403 and response.json()["error"] == "consent_required"


def test_analytics_stores_the_events_but_builds_no_profile(client, backend):
    answer_consent(client)(analytics=True, personalization=False)
    visitor_id = visitor_id_of(client)
    assert client.cookies["tl_consent"].value == "analytics" and visitor_id
    response, events = electronics_views(client)
    assert response.status_code == 202 and response.json()["stored"] == 3
    # Deduplicated like any batch: the same events again store nothing.
    again = client.post("/api/events", json.dumps({"events": events}), content_type="application/json")
    assert again.json()["duplicates"] == 3
    profile = backend.get(visitor_id, time.time(), (ELECTRONICS_WINDOW,))
    assert (profile.page_views, dict(profile.event_counts), profile.count_within(ELECTRONICS_WINDOW)) == (0, {}, 0)
    assert hero_variant(client) == "fallback"  # three electronics views, yet no targeting
    if redis_keys(backend) is not None:
        assert sorted(stream_events_of(backend, visitor_id)) == sorted(e["id"] for e in events)
        assert redis_keys(backend, f"tl:v1:{{{visitor_id}}}:p") == []  # no profile hash


def test_personalization_builds_the_profile_that_targets(client, backend):
    answer_consent(client)(analytics=False, personalization=True)
    visitor_id = visitor_id_of(client)
    response, events = electronics_views(client)
    assert response.status_code == 202 and response.json()["stored"] == 3
    profile = backend.get(visitor_id, time.time(), (ELECTRONICS_WINDOW,))
    assert (profile.page_views, profile.count_within(ELECTRONICS_WINDOW)) == (3, 3)
    assert hero_variant(client) == ELECTRONICS_VARIANT
    if redis_keys(backend) is not None:
        assert sorted(stream_events_of(backend, visitor_id)) == sorted(e["id"] for e in events)
        assert redis_keys(backend, f"tl:v1:{{{visitor_id}}}:p") != []


def test_the_worker_persists_analytics_only_events_for_aggregate_counts(client, use_redis_store, redis_client):
    answer_consent(client)(analytics=True, personalization=False)
    visitor_id = visitor_id_of(client)
    electronics_views(client)
    worker.ensure_group(redis_client)
    consumer = worker.Consumer(name="w1", batch=10, block_ms=0)  # reads never wait
    while worker.process_once(redis_client, consumer):
        pass
    rows = EventRow.objects.filter(visitor_id=visitor_id)
    assert sorted(rows.values_list("category", flat=True)) == ["electronics"] * 3


def test_analytics_visitors_take_part_in_experiments_without_a_profile(client, backend):
    make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})], goals="click")
    live = running("hero-test")
    visitor_id = visitor_in(live, "electronics")
    client.cookies["tl_consent"] = "analytics"
    client.cookies["tl_vid"] = signed_visitor_id(visitor_id)
    assert ELECTRONICS_HERO in client.get("/").content.decode()
    click = {"type": "click", "id": "click-1", "ts": int(time.time() * 1000), "target": "link"}
    client.post("/api/events", json.dumps({"events": [click]}), content_type="application/json")
    stats = counters().pending("hero-test")
    assert {arm: n for (_, arm, _, stat), n in stats.items() if stat == "n"} == {"electronics": 1}
    assert {arm: n for (_, arm, _, stat), n in stats.items() if stat == "c"} == {"electronics": 1}
    profile = backend.get(visitor_id, time.time())
    assert (dict(profile.assignments), profile.page_views, profile.event_counts.get("click", 0)) == ({"hero-test": "electronics"}, 0, 0)


def test_declined_visitors_are_left_out_of_experiments(client, backend):
    make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})])
    visitor_id = visitor_in(running("hero-test"), "electronics")
    client.cookies["tl_consent"] = "none"
    client.cookies["tl_vid"] = signed_visitor_id(visitor_id)
    assert FALLBACK_HERO in client.get("/").content.decode()
    assert counters().pending("hero-test") == {}


def test_giving_up_personalization_erases_the_profile_and_starts_a_new_id(client, backend):
    consent = answer_consent(client)
    consent(analytics=True, personalization=True)
    first_id = visitor_id_of(client)
    electronics_views(client)
    assert backend.get(first_id, time.time()).page_views == 3
    consent(analytics=True, personalization=False)
    second_id = visitor_id_of(client)
    assert second_id and second_id != first_id
    assert backend.get(first_id, time.time()).page_views == 0
    assert redis_keys(backend, f"*{first_id}*") in (None, [])
    response, _ = electronics_views(client)
    assert response.json()["stored"] == 3  # analytics goes on, under the new id only
    assert backend.get(second_id, time.time()).page_views == 0
