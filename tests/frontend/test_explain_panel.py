"""The ?explain=1 panel for people (issue 16 item 4): segment names, each rule as the sentence
rule_sentences writes, what each condition saw in words, and each personalized block of the page
with the variant it chose and why."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from wagtail.blocks.stream_block import StreamValue

from tailored.blocks import explained
from tailored.blocks.personalized import Choice, PersonalizedBlock
from tailored.core.types import EMPTY_PROFILE, Consent, Context, Visitor
from tailored.services import user_visitor_id
from tests.conftest import DESKTOP_UA, MOBILE_UA
from tests.helpers import consent_cookies, make_fan, ssr_variants

pytestmark = pytest.mark.django_db

ELECTRONICS_SENTENCE = "Visitors who viewed electronics products at least 3 times in the last 24 hours."


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def explain_page(client, user_agent: str = DESKTOP_UA, fan_views: int = 0):
    editor = get_user_model().objects.get(username="editor")
    client.force_login(editor)
    consent_cookies(client, "e" * 32)
    if fan_views:
        make_fan(user_visitor_id(editor.pk), views=fan_views)  # logged in: known by the user's id
    html = client.get("/?explain=1", HTTP_USER_AGENT=user_agent).content.decode()
    return html, BeautifulSoup(html, "html.parser").select_one("aside.tl-explain")


def segment(panel, slug: str):
    return panel.select_one(f'[data-tl-explain-segment="{slug}"]')


def test_each_segment_shows_its_name_its_sentence_and_what_each_condition_saw(client):
    html, panel = explain_page(client, MOBILE_UA, fan_views=3)
    fans = segment(panel, "electronics-fans")
    assert fans["data-matched"] == "true"
    assert fans.strong.text == "Electronics fans"
    assert fans.select_one("[data-tl-explain-sentence]").text == ELECTRONICS_SENTENCE
    assert " ".join(fans.select_one("ul li").text.split()) == (
        "✓ viewed electronics products at least 3 times in the last 24 hours (saw: 3 times)"
    )
    mobile = segment(panel, "mobile-visitors")
    assert mobile.select_one("[data-tl-explain-sentence]").text == "Visitors who are on a mobile device."
    assert "(saw: mobile)" in mobile.text
    # Words, not the rule's JSON or field names, and names, not slugs.
    text = panel.get_text(" ")
    for raw in ('"op"', "context.device", "page_view", "electronics-fans", "{"):
        assert raw not in text


def test_segments_the_visit_is_in_come_first_and_the_others_fold_away_with_why_not(client):
    _, panel = explain_page(client, fan_views=2)
    shown_first = [row["data-tl-explain-segment"] for row in panel.find("ul", recursive=False).select("[data-tl-explain-segment]")]
    assert "new-visitors" in shown_first and "electronics-fans" not in shown_first
    others = panel.select_one("details.tl-explain__others")
    assert others.summary.text.startswith("Not in ") and others.summary.text.endswith("other segments, and why not")
    fans = others.select_one('[data-tl-explain-segment="electronics-fans"]')
    assert fans["data-matched"] == "false" and "(saw: 2 times)" in fans.text
    assert "✗" in fans.select_one("ul li").text


def test_each_personalized_block_says_which_variant_it_chose_and_why(client):
    html, panel = explain_page(client, MOBILE_UA, fan_views=3)
    blocks = panel.select("[data-tl-explain-block]")
    # One line per personalized block, in page order, naming what the page rendered.
    assert [b["data-variant"] for b in blocks] == ssr_variants(html)
    hero, app = blocks[0], blocks[1]
    assert " ".join(hero.text.split()) == (
        "Block 1 (2 variants and a fallback) shows variant “Electronics fans”: it matched Electronics fans"
    )
    assert hero.select_one("[data-tl-explain-why]").text == "it matched Electronics fans"
    assert app.select_one("[data-tl-explain-why]").text == "it matched device mobile"
    fallbacks = [b for b in blocks if b["data-variant"] == "fallback"]
    assert fallbacks and all("shows the fallback: no variant matched" in " ".join(b.text.split()) for b in fallbacks)


def test_a_desktop_visitor_with_no_history_gets_fallbacks_explained(client):
    html, panel = explain_page(client)
    first = panel.select_one('[data-tl-explain-block="1"]')
    assert first["data-variant"] == "fallback"
    assert first.select_one("[data-tl-explain-why]").text == "no variant matched"


def test_plain_requests_record_no_block_choices(client):
    client.force_login(get_user_model().objects.get(username="editor"))
    response = client.get("/")
    assert explained.of(response.wsgi_request) == []
    assert explained.ATTRIBUTE not in vars(response.wsgi_request)


def test_a_visitor_asking_for_an_explanation_records_nothing(client):
    response = client.get("/?explain=1")
    assert "data-tl-explain-block" not in response.content.decode()
    assert explained.ATTRIBUTE not in vars(response.wsgi_request)


def test_the_holdout_and_experiments_are_named_as_the_reason():
    block = PersonalizedBlock()
    value = block.to_python({"variants": [], "fallback": [{"type": "hero", "value": {"heading": "Hi"}}]})
    request = RequestFactory().get("/?explain=1")
    request.user = get_user_model().objects.get(username="editor")
    fallback = value["fallback"]
    assert isinstance(fallback, StreamValue)
    visitor = Visitor(id=None, consent=Consent(decided=True, personalization=True), context=Context(), profile=EMPTY_PROFILE, segments=frozenset())
    explained.note(request, value, Choice("fallback", "Fallback", fallback, holdout=True), visitor)
    explained.note(request, value, Choice("b", "Bold", fallback, experiment="hero-test", arm="bold"), visitor)
    explained.note(request, value, Choice("fallback", "Fallback", fallback), None)
    reasons = [choice["reason"] for choice in explained.of(request)]
    assert reasons == [
        "this visitor is in the global holdout, which always sees the fallback",
        "the running experiment “hero-test” gave this visitor its arm “bold”",
        "personalization is off",
    ]


def test_context_tags_read_as_words():
    from tailored.blocks.personalized import _tags

    tags = _tags("v", {"devices": ["mobile"], "weekdays": ["sat"], "regions": ["GB"], "campaigns": ["spring"], "starts_at": "2020-01-01T00:00:00Z"})
    context = Context(device="mobile", weekday="sat", country="GB", region="GB-ENG", utm_campaign="spring")
    visitor = Visitor(id=None, consent=Consent(), context=context, profile=EMPTY_PROFILE, segments=frozenset())
    assert explained.matched_tags(tags, visitor) == [
        "device mobile", "weekday Saturday", "campaign spring", "country or region GB", "within its schedule",
    ]


def test_graphql_explain_gives_editors_the_same_names_and_sentences(client):
    explain_page(client, fan_views=3)
    query = {"query": "{ visitor { explain } }"}
    rows = client.post("/graphql/", query, content_type="application/json").json()["data"]["visitor"]["explain"]
    fans = next(row for row in rows if row["segment"] == "electronics-fans")
    assert (fans["name"], fans["matched"], fans["sentence"]) == ("Electronics fans", True, ELECTRONICS_SENTENCE)
