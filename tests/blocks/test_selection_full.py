"""core.selection with every tag kind and the schedule: pure, no database.

Read as a spec: a variant matches when every kind of tag it has matches (segments: any of;
each context kind: any of its values), within its schedule; the first matching variant wins."""

from __future__ import annotations

import pytest

from tailored.core.selection import VariantTags, choose_variant
from tailored.core.types import Context

NOW = 1_800_000_000.0  # a fixed clock: choosing never reads the time itself
LONDON_RAINY_MORNING = Context(
    device="mobile", daypart="morning", weekday="sat", country="GB", region="GB-ENG",
    weather="rain", utm_campaign="spring-sale",
)


def tags(**kwargs) -> VariantTags:
    return VariantTags("v", **{k: frozenset(v) if isinstance(v, (set, list, tuple)) else v for k, v in kwargs.items()})


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (tags(), True),
        (tags(segments={"fans", "other"}), True),
        (tags(segments={"other"}), False),
        (tags(devices={"mobile", "tablet"}), True),
        (tags(devices={"desktop"}), False),
        (tags(dayparts={"morning"}), True),
        (tags(dayparts={"evening", "night"}), False),
        (tags(weekdays={"sat", "sun"}), True),
        (tags(weekdays={"mon"}), False),
        (tags(regions={"GB"}), True),
        (tags(regions={"GB-ENG"}), True),
        (tags(regions={"US", "GB-SCT"}), False),
        (tags(weather={"rain", "storm"}), True),
        (tags(weather={"clear"}), False),
        (tags(campaigns={"spring-sale"}), True),
        (tags(campaigns={"black-friday"}), False),
        (tags(segments={"fans"}, devices={"mobile"}, dayparts={"morning"}, weekdays={"sat"}, regions={"GB"}, weather={"rain"}, campaigns={"spring-sale"}), True),
        (tags(segments={"fans"}, devices={"mobile"}, dayparts={"morning"}, weekdays={"sat"}, regions={"GB"}, weather={"rain"}, campaigns={"other"}), False),
    ],
)
def test_every_kind_of_tag(variant, expected):
    assert variant.matches(frozenset({"fans"}), LONDON_RAINY_MORNING, NOW) is expected


@pytest.mark.parametrize("kind", ["dayparts", "weekdays", "regions", "weather", "campaigns"])
def test_an_unknown_fact_never_matches_a_variant_tagged_with_it(kind):
    value = {"dayparts": "morning", "weekdays": "mon", "regions": "GB", "weather": "rain", "campaigns": "x"}[kind]
    assert not tags(**{kind: {value}}).matches(frozenset(), Context(), NOW)


def test_a_region_code_does_not_match_another_region_of_the_same_country():
    scotland = Context(country="GB", region="GB-SCT")
    assert tags(regions={"GB"}).matches(frozenset(), scotland, NOW)
    assert not tags(regions={"GB-ENG"}).matches(frozenset(), scotland, NOW)


def test_the_schedule_starts_inclusive_and_ends_exclusive():
    variant = tags(starts_at=NOW, ends_at=NOW + 3600)
    assert not variant.matches(frozenset(), Context(), NOW - 1)
    assert variant.matches(frozenset(), Context(), NOW)
    assert variant.matches(frozenset(), Context(), NOW + 3599)
    assert not variant.matches(frozenset(), Context(), NOW + 3600)


def test_open_ended_schedules():
    assert tags(starts_at=NOW).matches(frozenset(), Context(), NOW + 10**9)
    assert not tags(starts_at=NOW).matches(frozenset(), Context(), NOW - 1)
    assert tags(ends_at=NOW).matches(frozenset(), Context(), 0)
    assert not tags(ends_at=NOW).matches(frozenset(), Context(), NOW)


def test_without_a_clock_a_scheduled_variant_never_shows_and_others_do():
    assert not tags(starts_at=NOW).matches(frozenset(), Context())
    assert tags(devices={"desktop"}).matches(frozenset(), Context())


def test_first_match_wins_in_editor_order():
    variants = [
        VariantTags("campaign", campaigns=frozenset({"spring-sale"}), starts_at=NOW + 60),  # not started yet
        VariantTags("rain", weather=frozenset({"rain"})),
        VariantTags("mobile", devices=frozenset({"mobile"})),
    ]
    assert choose_variant(variants, frozenset(), LONDON_RAINY_MORNING, NOW) == 1
    assert choose_variant(variants, frozenset(), LONDON_RAINY_MORNING, NOW + 60) == 0
    assert choose_variant(variants, frozenset(), Context(device="desktop"), NOW) is None


def test_variant_tags_are_frozen():
    with pytest.raises(AttributeError):
        tags().devices = frozenset({"mobile"})  # type: ignore[misc]
