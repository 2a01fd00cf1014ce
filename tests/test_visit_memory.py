"""What the profile remembers of a visit (issue 18 item 1): only the parameters rules remember."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from tailored.frontend.partials import body_context
from tailored.models import Segment
from tailored.segments import segment_cache
from tailored.visit_memory import kept_query, landing_fields, parse_kept, remembered_names

pytestmark = pytest.mark.django_db


def test_only_the_remembered_parameters_are_kept():
    assert kept_query("promo=spring&email=ann%40example.com&ref=x", frozenset({"promo", "ref"})) == "promo=spring&ref=x"
    assert kept_query("email=ann%40example.com", frozenset({"promo"})) == ""
    assert kept_query(None, frozenset({"promo"})) == ""
    assert parse_kept("promo=spring+sale&ref=x") == {"promo": "spring sale", "ref": "x"}


@pytest.fixture
def remembering_rule():
    Segment.objects.create(name="Spring", slug="spring", rule={"field": "visit.query.promo", "op": "eq", "value": "spring"})
    segment_cache.invalidate()
    yield
    segment_cache.invalidate()


def test_the_enabled_rules_name_what_is_remembered(remembering_rule):
    assert remembered_names() == {"promo"}
    assert landing_fields(("/offers/", "promo=spring&email=a")) == {"visit_landing": "/offers/", "visit_query": "promo=spring"}
    request = RequestFactory().get("/?promo=spring")
    assert body_context(request)["keep"] == "promo"  # tracker.js sends only these


def test_nothing_is_remembered_when_no_rule_asks():
    segment_cache.invalidate()
    assert remembered_names() == frozenset()
    assert landing_fields(("/offers/", "promo=spring")) == {"visit_landing": "/offers/", "visit_query": ""}
    # A visit whose first page view is not in the batch still forgets the last visit's.
    assert landing_fields(None) == {"visit_landing": "", "visit_query": ""}
