"""StaticChoiceBlock: the blocks with a fixed list of choices decode stored values, defaults and
unknown values exactly as Wagtail's ChoiceBlock does (a dictionary look-up instead of a walk over
the form field's choices), and still offer the same choices in the editor."""

from __future__ import annotations

import pytest
from wagtail import blocks

from tailored.blocks.choices import StaticChoiceBlock
from tailored.blocks.commerce import ProductCarouselBlock, RecommendationBlock
from tailored.blocks.content import CTABlock
from tailored.blocks.media import ImageWithTextBlock
from tailored.blocks.personalized import PersonalizedBlock, VariantBlock

STATIC = [
    (VariantBlock, "repeat_zone"),
    (CTABlock, "style"),
    (ImageWithTextBlock, "image_position"),
    (ProductCarouselBlock, "source"),
    (RecommendationBlock, "strategy"),
]


def _pair(owner: type, name: str) -> tuple[StaticChoiceBlock, blocks.ChoiceBlock]:
    static = owner().child_blocks[name]
    assert isinstance(static, StaticChoiceBlock)
    plain = blocks.ChoiceBlock(choices=list(static.static_choices), default=static.meta.default, required=static._required)
    return static, plain


@pytest.mark.parametrize(("owner", "name"), STATIC)
def test_decodes_as_wagtails_choice_block(owner, name):
    static, plain = _pair(owner, name)
    for value in [*(key for key, _ in static.static_choices), None, "", "not-a-choice", 3]:
        assert static.to_python(value) == plain.to_python(value), value
    assert static.get_default() == plain.get_default()
    assert static.normalize(None) == plain.normalize(None)


@pytest.mark.parametrize(("owner", "name"), STATIC)
def test_editor_offers_the_same_choices(owner, name):
    static, plain = _pair(owner, name)
    offered = [key for key, _ in static.field.choices]
    assert offered == [key for key, _ in plain.field.choices]
    assert {key for key, _ in static.static_choices} <= set(offered)


def test_variant_without_stored_zone_decodes_to_visitor_time():
    """Variants saved before `repeat_zone` existed (the demo's) read the default, as before."""
    block = PersonalizedBlock()
    value = block.to_python({"variants": [{"type": "item", "id": "a1", "value": {"label": "Old", "segments": [], "content": []}}], "fallback": []})
    assert value["variants"][0]["repeat_zone"] == "visitor"
    stored = block.to_python({"variants": [{"type": "item", "id": "a2", "value": {"label": "New", "repeat_zone": "site", "content": []}}], "fallback": []})
    assert stored["variants"][0]["repeat_zone"] == "site"
