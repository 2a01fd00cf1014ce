"""PersonalizedBlock: a fallback is required; choosing costs no query and follows the core."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from wagtail.blocks import StructBlockValidationError

from tailored.blocks.personalized import PersonalizedBlock
from tailored.core.types import EMPTY_PROFILE, Consent, Context, Visitor

pytestmark = pytest.mark.django_db  # segment choices come from the Segment table

BLOCK = PersonalizedBlock()


def value(fallback=True):
    return BLOCK.to_python(
        {
            "variants": [
                {"type": "item", "id": "v-fans", "value": {"label": "Fans", "segments": ["electronics-fans"], "devices": [], "dayparts": [], "content": [{"type": "cta", "value": {"text": "Fans", "button_label": "Go", "url": "/", "style": "primary"}}]}},
                {"type": "item", "id": "v-mobile", "value": {"label": "", "segments": [], "devices": ["mobile"], "dayparts": [], "content": [{"type": "cta", "value": {"text": "Mobile", "button_label": "Go", "url": "/", "style": "primary"}}]}},
            ],
            "fallback": [{"type": "cta", "value": {"text": "Everyone", "button_label": "Go", "url": "/", "style": "primary"}}] if fallback else [],
        }
    )


def visitor(segments=(), device="desktop"):
    return Visitor(id=None, consent=Consent(), context=Context(device=device), profile=EMPTY_PROFILE, segments=frozenset(segments))


def test_saving_without_a_fallback_says_so():
    with pytest.raises(StructBlockValidationError) as caught:
        BLOCK.clean(value(fallback=False))
    fallback_errors = caught.value.block_errors["fallback"].non_block_errors.as_data()
    assert "Add fallback content" in fallback_errors[0].message


@pytest.mark.django_db
def test_choosing_costs_no_query():
    block_value = value()
    with CaptureQueriesContext(connection) as queries:
        choice = BLOCK.choose(block_value, visitor(segments={"electronics-fans"}))
    assert len(queries) == 0
    assert (choice.key, choice.label) == ("v-fans", "Fans")


def test_variants_in_order_then_fallback():
    block_value = value()
    assert BLOCK.choose(block_value, visitor(device="mobile")).key == "v-mobile"
    assert BLOCK.choose(block_value, visitor(device="mobile")).label == "Variant 2"
    assert BLOCK.choose(block_value, visitor(segments={"electronics-fans"}, device="mobile")).key == "v-fans"
    chosen = BLOCK.choose(block_value, visitor())
    assert chosen.key == "fallback"
    assert chosen.content[0].value["text"] == "Everyone"


def test_no_visitor_means_fallback():
    assert BLOCK.choose(value(), None).key == "fallback"
