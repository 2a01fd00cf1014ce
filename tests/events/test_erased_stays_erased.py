"""Nothing comes back after an erasure: not from a request that resolved the visitor before it
(tracker.js's last beacon as the visitor leaves the page), not from a worker that checked the
tombstones just before it, and not from a mutation after eraseMyData in the same GraphQL
document. Each would write under an id whose cookie is gone, where no export or erasure can
reach it again."""

from __future__ import annotations

import time

import pytest
from django.test import RequestFactory

from tailored import conf, worker
from tailored.core.types import Event
from tailored.events.stream import CART_WATCH_KEY
from tailored.insights import counting as insights_counting
from tailored.models import Event as StoredEvent
from tailored.services import record_events, resolve_visitor
from tests.conftest import DESKTOP_UA
from tests.helpers import (
    HOME_BLOCK,
    consent_cookies,
    drain_stream,
    keys_naming,
    post_events,
    signed_visitor_id,
)

pytestmark = pytest.mark.django_db

V = "c" * 32


@pytest.fixture
def visitor(client, use_redis_store, redis_client):
    worker.ensure_group(redis_client)
    consent_cookies(client, V)
    return client


def test_a_batch_resolved_before_the_erasure_writes_nothing_after_it(visitor, redis_client):
    post_events(visitor, [{"type": "page_view", "id": "p1", "category": "books", "product_id": 41}])
    drain_stream(redis_client)
    request = RequestFactory().post("/api/events", HTTP_USER_AGENT=DESKTOP_UA)
    request.COOKIES.update({"tl_consent": "analytics.personalization", "tl_vid": signed_visitor_id(V)})
    in_flight = resolve_visitor(request)  # the beacon's request, before...
    assert visitor.delete("/api/me").status_code == 200  # ...the privacy centre's "Erase my data"

    result = record_events(in_flight, [Event("p2", "page_view", ts=time.time(), category="books", item="42")])
    drain_stream(redis_client)
    assert result.stored == ()
    assert keys_naming(redis_client, V) == []
    assert conf.get_profile_store().get(V, time.time()).page_views == 0
    assert not StoredEvent.objects.filter(visitor_id=V).exists()


def test_an_erasure_during_the_workers_writes_is_not_undone_by_them(visitor, redis_client, monkeypatch):
    post_events(visitor, [
        {"type": "page_view", "id": "p1", "category": "books", "product_id": 41, "url": "/b/41/"},
        {"type": "add_to_cart", "id": "c1", "product_id": 41},
        {"type": "impression", "id": "i1", "block": HOME_BLOCK, "variant": "fallback", "page": 3},
    ])
    checked = worker.unstore_erased_meanwhile

    def erasure_lands_after_the_check(client_, decoded):
        skipped = checked(client_, decoded)  # no tombstone yet: the worker goes on writing...
        assert visitor.delete("/api/me").status_code == 200  # ...while the visitor erases
        return skipped

    monkeypatch.setattr(worker, "unstore_erased_meanwhile", erasure_lands_after_the_check)
    drain_stream(redis_client)
    monkeypatch.undo()
    assert keys_naming(redis_client, V) == []  # seen items, scores, trigger states
    assert redis_client.zscore(CART_WATCH_KEY, V) is None
    assert redis_client.hgetall(f"{insights_counting.visitor_prefix(V)}seen:{insights_counting.digest(V)}") == {}
    assert not StoredEvent.objects.filter(visitor_id=V).exists()


def test_no_mutation_after_erase_my_data_in_the_same_document_writes_under_the_id(visitor, redis_client):
    document = """mutation($events: [GenericScalar!]!) {
      erase: eraseMyData { erasedEvents errors { code } }
      track: trackEvents(events: $events) { stored errors { code } }
    }"""
    events = [{"type": "search", "id": "s1", "ts": int(time.time() * 1000), "query": "after erasure"}]
    response = visitor.post("/graphql/", {"query": document, "variables": {"events": events}}, content_type="application/json")
    data = response.json()["data"]
    assert data["erase"]["errors"] == []
    assert (data["track"]["stored"], [e["code"] for e in data["track"]["errors"]]) == (0, ["consent_required"])
    drain_stream(redis_client)
    assert keys_naming(redis_client, V) == []
    assert not StoredEvent.objects.filter(visitor_id=V).exists()
