from tailored.core.selection import VariantTags, choose_variant
from tailored.core.types import Context

MOBILE_MORNING = Context(device="mobile", daypart="morning")


def test_first_matching_variant_wins():
    variants = [
        VariantTags("fans", segments=frozenset({"electronics-fans"})),
        VariantTags("mobile", devices=frozenset({"mobile"})),
    ]
    assert choose_variant(variants, frozenset({"electronics-fans"}), MOBILE_MORNING) == 0
    assert choose_variant(variants, frozenset(), MOBILE_MORNING) == 1


def test_no_match_means_fallback():
    variants = [VariantTags("fans", segments=frozenset({"electronics-fans"}))]
    assert choose_variant(variants, frozenset({"books-fans"}), MOBILE_MORNING) is None
    assert choose_variant([], frozenset(), MOBILE_MORNING) is None


def test_segments_are_any_of():
    variant = VariantTags("v", segments=frozenset({"a", "b"}))
    assert variant.matches(frozenset({"b"}), Context())
    assert not variant.matches(frozenset({"c"}), Context())


def test_every_tag_kind_must_match():
    variant = VariantTags("v", segments=frozenset({"a"}), devices=frozenset({"mobile"}), dayparts=frozenset({"evening"}))
    assert variant.matches(frozenset({"a"}), Context(device="mobile", daypart="evening"))
    assert not variant.matches(frozenset({"a"}), Context(device="mobile", daypart="morning"))
    assert not variant.matches(frozenset({"a"}), Context(device="desktop", daypart="evening"))
    assert not variant.matches(frozenset(), Context(device="mobile", daypart="evening"))


def test_unknown_daypart_does_not_match_a_daypart_variant():
    assert not VariantTags("v", dayparts=frozenset({"morning"})).matches(frozenset(), Context(daypart=None))
