"""The onboarding survey: shown to a consenting visitor with no history; the answer is saved to
the profile through the store's `set_preferences` (until a backend has it, the view says 501)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from tailored.blocks.engagement import OnboardingSurveyBlock
from tailored.core.types import EMPTY_PROFILE, Consent, Context, Profile, Visitor
from tests.helpers import consent_cookies

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.blocks.urls")]

VISITOR_ID = "5" * 32
SURVEY = OnboardingSurveyBlock()
RAW = {"heading": "What are you shopping for?", "intro": "", "categories": [], "button_label": "Go", "thanks": "Thanks, noted!"}


def visitor(profile=EMPTY_PROFILE, consented=True):
    consent = Consent(decided=True, analytics=consented, personalization=consented)
    return Visitor(id=VISITOR_ID if consented else None, consent=consent, context=Context(), profile=profile, segments=frozenset())


def render(who, path="/"):
    request = RequestFactory().get(path)
    request.visitor = who
    return SURVEY.render(SURVEY.to_python(RAW), context={"request": request, "csrf_input": ""})


@pytest.fixture
def store(memory_store, monkeypatch):
    saved = []
    monkeypatch.setattr(memory_store, "set_preferences", lambda visitor_id, categories: saved.append((visitor_id, categories)), raising=False)
    memory_store.saved = saved
    return memory_store


def test_only_a_consenting_visitor_without_history_is_asked():
    assert SURVEY.should_ask(visitor())
    assert not SURVEY.should_ask(visitor(consented=False))
    assert not SURVEY.should_ask(None)
    for history in (Profile(preferences=("books",)), Profile(category_views={"books": 1}), Profile(recent_items=(("1", 1.0),))):
        assert not SURVEY.should_ask(visitor(history))


def test_the_form_offers_every_category_and_posts_to_the_view():
    html = render(visitor())
    assert 'action="/preferences/"' in html
    assert html.count('name="category"') == 6 and 'value="electronics"' in html
    assert render(visitor(consented=False)).strip() == ""


def test_after_saving_the_block_thanks_the_visitor():
    assert "Thanks, noted!" in render(visitor(Profile(preferences=("books",))), path="/?tl_survey=saved")


def test_the_answer_is_saved_to_the_profile(client, store):
    consent_cookies(client, VISITOR_ID)
    response = client.post("/preferences/", {"category": ["books", "outdoors", "nope", "books"], "next": "/stories/"})
    assert response.status_code == 303
    assert response["Location"] == "/stories/?tl_survey=saved#tl-survey"
    assert store.saved == [(VISITOR_ID, ["books", "outdoors"])]


def test_json_answers_and_unsafe_redirects(client, store):
    consent_cookies(client, VISITOR_ID)
    response = client.post("/preferences/", {"categories": ["fashion"]}, content_type="application/json")
    assert response.json() == {"preferences": ["fashion"]}
    response = client.post("/preferences/", {"category": "fashion", "next": "https://evil.example/"})
    assert response["Location"] == "/?tl_survey=saved#tl-survey"


def test_nothing_is_saved_without_consent_or_without_a_category(client, store):
    assert client.post("/preferences/", {"category": "books"}).status_code == 403
    consent_cookies(client, VISITOR_ID)
    assert client.post("/preferences/", {"category": "not-a-category"}).status_code == 400
    assert client.post("/preferences/", b"{", content_type="application/json").status_code == 400
    assert store.saved == []


def test_the_real_store_keeps_the_answer_in_the_profile(client, memory_store):
    import time

    consent_cookies(client, VISITOR_ID)
    response = client.post("/preferences/", {"category": "books"}, HTTP_ACCEPT="application/json")
    assert response.status_code < 400
    assert memory_store.get(VISITOR_ID, time.time()).preferences == ("books",)


def test_the_view_only_accepts_posts(client):
    assert client.get("/preferences/").status_code == 405
