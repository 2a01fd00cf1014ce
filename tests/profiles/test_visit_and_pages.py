"""Every ProfileStore keeps what issue 18's rules read: the visit's landing page and the
parameters rules remember (only those), and page and section visit counts."""

from __future__ import annotations

import time

import pytest

from tailored.core.rules import compile_rule
from tailored.core.types import Context, Event, Window
from tailored.models import Segment
from tailored.profiles.base import profile_to_json
from tailored.segments import segment_cache

pytestmark = pytest.mark.django_db
NOW = time.time()
REMEMBERED = {"field": "visit.query.promo", "op": "eq", "value": "spring"}


def view(event_id: str, at: float, url: str, **attrs) -> Event:
    return Event(event_id, "page_view", ts=at, url=url, attrs=attrs)


@pytest.fixture
def remembering_rule():
    Segment.objects.create(name="Spring", slug="spring", rule=REMEMBERED)
    segment_cache.invalidate()
    yield compile_rule(REMEMBERED)
    segment_cache.invalidate()


def test_the_visit_keeps_its_landing_page_and_only_the_remembered_parameters(store, remembering_rule):
    store.record("v1", [view("a", NOW - 120, "/offers/spring/", keep="promo=spring&email=ann%40example.com")], NOW - 120)
    store.record("v1", [view("b", NOW - 60, "/products/")], NOW - 60)  # the same visit goes on
    profile = store.get("v1", NOW)
    assert (profile.visit_landing, dict(profile.visit_query)) == ("/offers/spring/", {"promo": "spring"})
    assert remembering_rule.matches(profile, Context(path="/products/"), NOW)  # no ?promo on this page
    exported = profile_to_json(profile)
    assert (exported["visit_landing"], exported["visit_query"]) == ("/offers/spring/", {"promo": "spring"})


def test_a_new_visit_forgets_the_last_ones(store, remembering_rule):
    store.record("v1", [view("a", NOW - 7200, "/offers/spring/", keep="promo=spring")], NOW - 7200)
    assert not remembering_rule.matches(store.get("v1", NOW), Context(), NOW)  # that visit has ended
    store.record("v1", [view("b", NOW, "/blog/")], NOW)
    profile = store.get("v1", NOW)
    assert (profile.visit_landing, dict(profile.visit_query)) == ("/blog/", {})
    assert not remembering_rule.matches(profile, Context(), NOW)


def test_page_views_count_for_the_page_and_its_sections(store):
    store.record("v1", [view("a", NOW, "/blog/2026/hello/", pages="4 12 19"), view("b", NOW, "/blog/", pages="4")], NOW)
    windows = [Window(f"page_view|{code}:{page}", 24) for code in "ps" for page in (4, 12, 19)]
    profile = store.get("v1", NOW, windows)
    counts = {w.counter: profile.count_within(w) for w in windows}
    assert counts == {
        "page_view|p:4": 1, "page_view|p:12": 0, "page_view|p:19": 1,
        "page_view|s:4": 2, "page_view|s:12": 1, "page_view|s:19": 1,
    }
