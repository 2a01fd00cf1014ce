"""A visitor who logs in is known by the user's id from then on: what they did before follows
them there (profile, stored events, items seen) and nothing stays under the anonymous id, where
their export and erasure could no longer reach it. Consent given or withdrawn while logged in
acts on the id their events go under."""

from __future__ import annotations

import logging
import time

import pytest
from django.contrib.auth import get_user_model

from tailored import conf, erasure, seen_items, worker
from tailored.events.stream import CART_WATCH_KEY, erased_digest
from tailored.models import DataRightsAudit, PendingErasure
from tailored.models import Event as StoredEvent
from tailored.services import user_visitor_id
from tests.helpers import consent_cookies, drain_stream, keys_naming, post_events

pytestmark = pytest.mark.django_db

ANONYMOUS = "b" * 32
PASSWORD = "pw-shopper-123"


def log_in(client, username: str) -> str:
    user = get_user_model().objects.create_user(username, email=f"{username}@example.com", password=PASSWORD)
    assert client.post("/admin/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return user_visitor_id(user.pk)


@pytest.fixture
def redis_worker(use_redis_store, redis_client):
    worker.ensure_group(redis_client)
    return redis_client


def test_what_was_done_before_login_is_exported_and_erased_with_the_user(client, redis_worker):
    consent_cookies(client, ANONYMOUS)
    post_events(client, [
        {"type": "page_view", "id": "p1", "category": "books", "product_id": 41, "url": "/books/41/"},
        {"type": "add_to_cart", "id": "c1", "product_id": 41},
    ])
    drain_stream(redis_worker)
    user_id = log_in(client, "shopper")
    erasure.complete_pending_erasures()  # the workers' next turn

    assert keys_naming(redis_worker, ANONYMOUS) == []
    assert redis_worker.zscore(CART_WATCH_KEY, ANONYMOUS) is None
    assert not StoredEvent.objects.filter(visitor_id=ANONYMOUS).exists()
    exported = client.get("/api/me/data").json()
    assert exported["visitor_id"] == user_id
    assert sorted(event["id"] for event in exported["events"]) == ["c1", "p1"]
    assert seen_items.get(user_id) == {"41"}  # never recommended to the user either

    assert client.delete("/api/me").status_code == 200
    assert keys_naming(redis_worker, user_id) == []
    assert not StoredEvent.objects.filter(visitor_id__in=[ANONYMOUS, user_id]).exists()


def test_the_anonymous_id_is_erased_by_the_workers_not_in_the_login_request(client, redis_worker):
    consent_cookies(client, ANONYMOUS)
    post_events(client, [{"type": "page_view", "id": "p1", "category": "books", "product_id": 41}])
    log_in(client, "shopper")
    assert list(PendingErasure.objects.values_list("visitor_id", flat=True)) == [ANONYMOUS]
    drain_stream(redis_worker)  # the anonymous entry the worker had not stored yet: its tombstone drops it
    erasure.complete_pending_erasures()
    assert not PendingErasure.objects.exists()
    assert DataRightsAudit.objects.filter(action="erase", visitor_id=erased_digest(ANONYMOUS)).exists()


def test_consent_withdrawn_after_login_erases_what_the_user_id_holds(client, redis_worker):
    user_id = log_in(client, "shopper")
    assert client.post("/consent/", {"choice": "accept"}).status_code == 303
    assert client.cookies["tl_vid"].value.startswith(f"{user_id}:")  # the id events go under
    post_events(client, [{"type": "page_view", "id": "p1", "category": "books", "product_id": 41, "url": "/b/41/"}])
    drain_stream(redis_worker)
    store = conf.get_profile_store()
    assert store.get(user_id, time.time()).page_views == 1

    assert client.post("/consent/", {"choice": "decline"}).status_code == 303
    assert store.get(user_id, time.time()).page_views == 0
    assert not StoredEvent.objects.filter(visitor_id=user_id).exists()
    assert DataRightsAudit.objects.filter(action="erase", visitor_id=erased_digest(user_id)).exists()


def test_a_user_who_consents_again_after_erasing_is_tracked_again(client, redis_worker):
    """The tombstone refuses only requests that knew the visitor before the erasure: the user's
    id is the same after it, and their new consent counts."""
    user_id = log_in(client, "shopper")
    assert client.post("/consent/", {"choice": "accept"}).status_code == 303
    post_events(client, [{"type": "page_view", "id": "p1", "category": "books", "product_id": 41}])
    assert client.delete("/api/me").status_code == 200
    assert client.post("/consent/", {"choice": "accept"}).status_code == 303
    post_events(client, [{"type": "page_view", "id": "p2", "category": "books", "product_id": 42}])
    drain_stream(redis_worker)
    assert conf.get_profile_store().get(user_id, time.time()).page_views == 1
    assert list(StoredEvent.objects.filter(visitor_id=user_id).values_list("event_id", flat=True)) == ["p2"]


def test_declining_while_logged_in_without_having_consented_erases_nothing(client, redis_worker):
    log_in(client, "shopper")
    assert client.post("/consent/", {"choice": "decline"}).status_code == 303
    assert not DataRightsAudit.objects.exists()


def test_an_invalid_account_address_is_not_written_to_the_log(client, use_redis_store, caplog):
    get_user_model().objects.create_user("ann", email="Ann.Smith@corp-mail", password=PASSWORD)
    consent_cookies(client, ANONYMOUS)
    with caplog.at_level(logging.DEBUG):
        assert client.post("/admin/login/", {"username": "ann", "password": PASSWORD}).status_code == 302
    assert "could not record the logged-in user" in caplog.text  # said, without the address
    assert "corp-mail" not in caplog.text
