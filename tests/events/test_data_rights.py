"""Every visitor can export and erase what is held about them; both actions are audited."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tailored import conf
from tailored.events.stream import erased_digest
from tailored.models import DataRightsAudit, Event
from tailored.services import user_visitor_id
from tests.helpers import consent_cookies, signed_visitor_id

pytestmark = pytest.mark.django_db

VISITOR = "c" * 32


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def send(client, *events, prefix="e", **headers):
    body = {"events": [{"id": f"{prefix}{i}", "ts": int(time.time() * 1000), **e} for i, e in enumerate(events)]}
    return client.post("/api/events", json.dumps(body), content_type="application/json", **headers)


def test_export_holds_the_profile_events_and_no_raw_ip(client):
    consent_cookies(client, VISITOR)
    send(client, {"type": "page_view", "category": "books", "product_id": 4}, {"type": "add_to_cart", "product_id": 4})
    Event.objects.create(visitor_id=VISITOR, event_id="e0", type="page_view", ts=timezone.now(), category="books")
    response = client.get("/api/me/data", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    data = response.json()
    assert data["visitor_id"] == VISITOR
    assert data["profile"]["cart"] == {"4": 1}
    assert data["profile"]["event_counts"] == {"page_view": 1, "add_to_cart": 1}
    assert [e["id"] for e in data["events"]] == ["e0"]
    assert "203.0.113.9" not in response.content.decode()
    audit = DataRightsAudit.objects.get(action="export")
    assert audit.visitor_id == VISITOR and audit.detail == {"events": 1}


def test_an_event_keeps_the_path_of_its_url_only(client):
    """A headless client may send location.href: the query string (a reset token, an address)
    and the fragment are never kept, nor the scheme and host; the path is the landing page."""
    consent_cookies(client, VISITOR)
    url = "https://shop.example.com/account/reset/?token=S3CRET-T0KEN&email=ann%40example.com#step-2"
    assert send(client, {"type": "page_view", "url": url}).status_code == 202
    response = client.get("/api/me/data")
    assert response.json()["profile"]["visit_landing"] == "/account/reset/"
    assert not any(secret in response.content.decode() for secret in ("S3CRET", "ann%40example.com", "step-2", "shop.example.com"))


def test_erase_removes_profile_events_and_the_id(client):
    consent_cookies(client, VISITOR)
    send(client, {"type": "page_view", "category": "books"})
    Event.objects.create(visitor_id=VISITOR, event_id="e0", type="page_view", ts=timezone.now())
    Event.objects.create(visitor_id="other", event_id="e0", type="page_view", ts=timezone.now())
    response = client.delete("/api/me")
    assert response.status_code == 200
    assert response.json()["erased"]["events"] == 1
    assert response.cookies["tl_vid"].value == ""
    assert conf.get_profile_store().get(VISITOR, time.time()).page_views == 0
    assert list(Event.objects.values_list("visitor_id", flat=True)) == ["other"]
    # The audit names the visitor by a one-way digest only, and says what went.
    audit = DataRightsAudit.objects.get(action="erase")
    assert audit.visitor_id == erased_digest(VISITOR) != VISITOR
    assert (audit.detail["events"], audit.detail["profile_keys"]) == (1, 1)


def test_without_consent_nothing_is_held(client):
    assert client.get("/api/me/data").status_code == 403
    assert client.delete("/api/me").status_code == 403


def test_cross_site_requests_are_refused(client):
    consent_cookies(client, VISITOR)
    response = client.delete("/api/me", HTTP_ORIGIN="https://evil.example", HTTP_SEC_FETCH_SITE="cross-site")
    assert response.status_code == 403
    assert not DataRightsAudit.objects.exists()


def test_login_merges_the_anonymous_profile_into_the_users(client):
    user = get_user_model().objects.create_user("shopper", password="pw-shopper-123")
    consent_cookies(client, VISITOR)
    send(client, {"type": "page_view", "category": "books"}, {"type": "add_to_cart", "product_id": 9})
    # Log in through a real login form, so the response carries the switched cookie.
    response = client.post("/admin/login/", {"username": "shopper", "password": "pw-shopper-123"})
    assert response.status_code == 302
    user_id = user_visitor_id(user.pk)
    assert response.cookies["tl_vid"].value.startswith(f"{user_id}:")  # signed
    store = conf.get_profile_store()
    merged = store.get(user_id, time.time())
    assert merged.page_views == 1 and dict(merged.cart) == {"9": 1}
    assert store.get(VISITOR, time.time()).page_views == 0
    # After login the visitor is known by the user's id, whatever the cookie says.
    assert send(client, {"type": "page_view", "category": "books"}, prefix="after-login-").status_code == 202
    assert store.get(user_id, time.time()).page_views == 2


def test_server_side_purchases_go_through_record_events(rf):
    from tailored.services import purchase_event, record_events, resolve_visitor

    request = rf.get("/", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0")
    request.COOKIES.update({"tl_consent": "analytics.personalization", "tl_vid": signed_visitor_id(VISITOR)})
    visitor = resolve_visitor(request)
    first = record_events(visitor, [purchase_event("A-1", 199.0, items=[3, 4])])
    again = record_events(visitor, [purchase_event("A-1", 199.0, items=[3, 4])])
    assert (len(first.stored), again.duplicates) == (1, 1)
    profile = conf.get_profile_store().get(VISITOR, time.time())
    assert (profile.purchases, profile.lifetime_value) == (1, 199.0)


@pytest.mark.parametrize("signal", [{"HTTP_SEC_GPC": "1"}, {"HTTP_DNT": "1"}, {"HTTP_USER_AGENT": "Googlebot/2.1 (+http://www.google.com/bot.html)"}])
def test_what_was_kept_stays_the_visitors_to_export_and_erase_when_nothing_more_may_be(client, signal):
    consent_cookies(client, VISITOR)
    send(client, {"type": "page_view", "category": "books"}, {"type": "page_view", "category": "books"})
    store = conf.get_profile_store()
    assert store.get(VISITOR, time.time()).page_views == 2
    # The browser now says "do not track" (or reads as a bot): nothing new is stored...
    assert send(client, {"type": "page_view", "category": "books"}, prefix="later", **signal).status_code == 403
    # ...and what was kept is still theirs.
    exported = client.get("/api/me/data", **signal)
    assert exported.status_code == 200 and exported.json()["profile"]["page_views"] == 2
    assert client.delete("/api/me", **signal).status_code == 200
    assert store.get(VISITOR, time.time()).page_views == 0


def test_the_privacy_centre_erases_under_gpc_and_says_nothing_new_is_stored(client):
    consent_cookies(client, VISITOR)
    send(client, {"type": "page_view", "category": "books"})
    page = client.get("/privacy-centre/", HTTP_SEC_GPC="1").content.decode()
    assert "nothing new is stored" in page and "Erase my data" in page
    download = client.get("/privacy-centre/data", HTTP_SEC_GPC="1")
    assert download.status_code == 200 and download.json()["visitor_id"] == VISITOR
    response = client.post("/privacy-centre/erase", HTTP_SEC_GPC="1")
    assert response["Location"].endswith("notice=erased")
    assert conf.get_profile_store().get(VISITOR, time.time()).page_views == 0


def test_erase_my_data_works_under_gpc(client):
    consent_cookies(client, VISITOR)
    send(client, {"type": "page_view", "category": "books"})
    Event.objects.create(visitor_id=VISITOR, event_id="e0", type="page_view", ts=timezone.now())
    document = "mutation { eraseMyData { erasedEvents errors { code } } }"
    response = client.post("/graphql/", {"query": document}, content_type="application/json", HTTP_SEC_GPC="1")
    assert response.json()["data"]["eraseMyData"] == {"erasedEvents": 1, "errors": []}
    assert conf.get_profile_store().get(VISITOR, time.time()).page_views == 0


def test_a_forged_cookie_reaches_no_ones_data_under_gpc(client):
    consent_cookies(client, VISITOR)
    send(client, {"type": "page_view", "category": "books"})
    client.cookies["tl_vid"] = VISITOR  # unsigned
    assert client.get("/api/me/data", HTTP_SEC_GPC="1").status_code == 403
    assert client.delete("/api/me", HTTP_SEC_GPC="1").status_code == 403
    assert conf.get_profile_store().get(VISITOR, time.time()).page_views == 1
