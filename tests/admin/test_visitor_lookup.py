"""Settings → Visitors (issue 16 item 5): an editor with the permission looks a visitor up by id or
user, sees their profile, segments, persona, scores, events and arms, exports or erases them; every
look-up, export and erasure is audited with the editor's username."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from tailored import conf
from tailored.events.stream import erased_digest
from tailored.models import DataRightsAudit, PendingErasure
from tailored.models import Event as StoredEvent
from tailored.services import user_visitor_id
from tests.helpers import make_fan

pytestmark = pytest.mark.django_db

VISITOR = "ab" * 16
LOOKUP = reverse("tailored_visitors:lookup")


def editor_client(client, django_user_model, username: str, may_look_up: bool):
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw")
    user.groups.add(Group.objects.get(name="Editors"))  # Wagtail's: admin access, no look-up permission
    if may_look_up:
        user.user_permissions.add(Permission.objects.get(codename="look_up_visitors"))
    client.force_login(user)
    return client


@pytest.fixture
def support(client, django_user_model, memory_store):
    return editor_client(client, django_user_model, "support", may_look_up=True)


@pytest.fixture
def known_visitor(memory_store):
    make_fan(VISITOR, "electronics", views=3)
    memory_store.set_model_outputs({VISITOR: ("researcher", {"churn_risk": 0.25})})
    memory_store.assign(VISITOR, "hero-test", "b")
    StoredEvent.objects.create(visitor_id=VISITOR, event_id="e1", type="page_view", ts=timezone.now(), category="electronics", url="/electronics/x/")
    return VISITOR


def test_without_the_permission_the_screen_and_its_actions_are_refused_and_not_in_the_menu(client, django_user_model, memory_store):
    editor = editor_client(client, django_user_model, "plain", may_look_up=False)
    make_fan(VISITOR)
    refused = [
        editor.get(LOOKUP, {"visitor": VISITOR}),
        editor.post(reverse("tailored_visitors:export", args=[VISITOR])),
        editor.post(reverse("tailored_visitors:erase", args=[VISITOR])),
    ]
    # Wagtail's answer to a permission error in the admin: back to the dashboard with a message.
    assert [(r.status_code, r["Location"]) for r in refused] == [(302, reverse("wagtailadmin_home"))] * 3
    assert conf.get_profile_store().get(VISITOR, time.time()).page_views == 3
    assert LOOKUP not in editor.get(reverse("wagtailadmin_home")).content.decode()
    assert not DataRightsAudit.objects.exists()


def test_a_look_up_shows_what_is_held_and_is_audited(support, known_visitor):
    assert LOOKUP in support.get(reverse("wagtailadmin_home")).content.decode()  # Settings → Visitors
    html = support.get(LOOKUP, {"visitor": known_visitor}).content.decode()

    assert f'data-tl-visitor="{known_visitor}"' in html
    assert 'data-tl-page-views>3<' in html
    assert "Electronics fans" in html  # the segment the three electronics views put them in
    assert "researcher" in html and "churn_risk: 0.250" in html
    assert "hero-test: b" in html  # the experiment arm
    assert "/electronics/x/" in html  # the stored event
    audit = DataRightsAudit.objects.get()
    assert (audit.action, audit.visitor_id, audit.detail) == ("lookup", known_visitor, {"by": "support"})


def test_the_whole_cookie_value_a_username_and_an_email_find_the_visitor(support, django_user_model):
    shopper = django_user_model.objects.create_user("shopper", "Shopper@Example.com", "pw")
    expected = user_visitor_id(shopper.pk)
    for entered in ("shopper", "shopper@example.com"):
        assert f'data-tl-visitor="{expected}"' in support.get(LOOKUP, {"visitor": entered}).content.decode()
    cookie = f"{VISITOR}:1j2k3l:signature"
    assert f'data-tl-visitor="{VISITOR}"' in support.get(LOOKUP, {"visitor": cookie}).content.decode()


def test_input_that_names_nobody_gets_a_message_and_no_audit_row(support, django_user_model):
    html = support.get(LOOKUP, {"visitor": "nobody-here"}).content.decode()
    assert "“nobody-here” is neither a visitor id (32 hexadecimal digits) nor the username or email address of a user." in html
    django_user_model.objects.create_user("twin1", "same@example.com", "pw")
    django_user_model.objects.create_user("twin2", "same@example.com", "pw")
    assert "More than one user has the email address" in support.get(LOOKUP, {"visitor": "same@example.com"}).content.decode()
    assert not DataRightsAudit.objects.exists()


def test_an_unknown_visitor_shows_that_nothing_is_held(support):
    html = support.get(LOOKUP, {"visitor": "cd" * 16}).content.decode()
    assert "data-tl-nothing-held" in html and "data-tl-page-views" not in html


def test_export_downloads_the_visitors_data_and_is_audited(support, known_visitor):
    response = support.post(reverse("tailored_visitors:export", args=[known_visitor]))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["visitor_id"] == known_visitor and data["profile"]["page_views"] == 3
    assert data["consent"] is None  # the answer lives in the visitor's browser
    assert [e["id"] for e in data["events"]] == ["e1"]
    assert DataRightsAudit.objects.get(action="export").detail == {"events": 1, "by": "support"}
    assert support.get(reverse("tailored_visitors:export", args=[known_visitor])).status_code == 405


def test_erase_asks_first_then_erases_everything_and_is_audited(support, known_visitor):
    confirm = support.get(reverse("tailored_visitors:erase", args=[known_visitor]))
    assert "It cannot be undone" in confirm.content.decode()
    assert conf.get_profile_store().get(known_visitor, time.time()).page_views == 3  # asking erased nothing

    response = support.post(reverse("tailored_visitors:erase", args=[known_visitor]), follow=True)

    html = response.content.decode()
    assert f"Visitor {known_visitor} erased: 1 stored events" in html and "data-tl-nothing-held" in html
    assert conf.get_profile_store().get(known_visitor, time.time()).page_views == 0
    assert not StoredEvent.objects.filter(visitor_id=known_visitor).exists()
    erased = DataRightsAudit.objects.get(action="erase")
    assert erased.visitor_id == erased_digest(known_visitor) and erased.detail["by"] == "support"
    assert not DataRightsAudit.objects.filter(visitor_id=known_visitor).exclude(action="lookup").exists()


def test_with_redis_down_the_erasure_is_queued_and_the_page_says_so(support, personalization):
    personalization(PROFILE_STORE="tailored.profiles.redis.RedisProfileStore", REDIS_URL="redis://127.0.0.1:9/0", REDIS_SOCKET_TIMEOUT_SECONDS=0.2)
    response = support.post(reverse("tailored_visitors:erase", args=[VISITOR]), follow=True)
    html = response.content.decode()
    assert "is queued and completes when Redis is back" in html
    assert "data-tl-store-unavailable" in html and "data-tl-erasure-queued" in html
    assert "data-tl-nothing-held" not in html and "data-tl-profile" not in html  # unknown, so not claimed
    assert PendingErasure.objects.filter(visitor_id=VISITOR).exists()


def test_a_malformed_visitor_id_in_an_action_url_is_not_found(support):
    assert support.post(reverse("tailored_visitors:erase", args=["not-an-id"])).status_code == 404
