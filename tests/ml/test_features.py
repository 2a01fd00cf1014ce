"""Features are rule operands: a feature's value is what the rule language reads, so a threshold
on a feature and the rule condition built from it agree on every profile."""

from __future__ import annotations

import pytest

from tailored.core.rules import compile_rule
from tailored.core.types import Context, Event, Profile
from tailored.events.schema import EVENT_TYPES
from tailored.ml.features import (
    FEATURE_WINDOWS,
    PERSONA_FEATURES,
    condition,
    feature_names,
    feature_rule_field,
    features,
    select,
)
from tailored.ml.training import profiles_at

NOW = 1_800_000_000.0
HOUR = 3600.0


def _events() -> dict[str, list[Event]]:
    shopper = [
        Event("a1", "page_view", NOW - 30 * HOUR, "books", "7", attrs={"page_type": "product"}),
        Event("a2", "scroll_depth", NOW - 30 * HOUR + 5, "books", attrs={"depth": 75}),
        Event("a3", "search", NOW - 2 * HOUR, attrs={"query": "novels"}),
        Event("a4", "add_to_cart", NOW - 2 * HOUR + 10, "books", "7", attrs={"quantity": 2, "price": 12.0}),
        Event("a5", "purchase", NOW - 2 * HOUR + 60, attrs={"order_id": "o1", "value": 24.0, "items": [7]}),
        Event("a6", "search", NOW - 10 * 24 * HOUR, attrs={"query": "old"}),
    ]
    # No scroll events: the rule language reads average_scroll_depth as None.
    browser = [Event("b1", "page_view", NOW - 50 * HOUR, "beauty", "9", attrs={"page_type": "product"})]
    return {"shopper": shopper, "browser": browser}


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return {**profiles_at(_events(), NOW), "nobody": Profile(visitor_id="nobody")}


def test_values_come_from_the_profile(profiles):
    shopper = dict(zip(feature_names, features(profiles["shopper"], NOW), strict=True))
    assert shopper["page_views"] == 1 and shopper["purchases"] == 1 and shopper["lifetime_value"] == 24.0
    assert shopper["searches_7d"] == 1 and shopper["searches_90d"] == 2  # the 10-day-old search
    assert shopper["cart_adds_7d"] == 1 and shopper["average_scroll_depth"] == 75
    assert shopper["cart_size"] == 0  # the purchase emptied the cart
    assert dict(zip(feature_names, features(profiles["browser"], NOW), strict=True))["average_scroll_depth"] == 0
    assert features(profiles["nobody"], NOW) == [0.0] * len(feature_names)


@pytest.mark.parametrize("name", feature_names)
@pytest.mark.parametrize("op", ["gt", "lte"])
def test_a_condition_on_a_feature_matches_exactly_when_the_feature_does(profiles, name, op):
    index = feature_names.index(name)
    for threshold in (0, 0.5, 1, 2, 30, 80):
        rule = compile_rule(condition(name, op, threshold), known_events=EVENT_TYPES)
        for profile in profiles.values():
            value = features(profile, NOW)[index]
            expected = value > threshold if op == "gt" else value <= threshold
            assert rule.matches(profile, Context(), NOW) == expected, (name, op, threshold, profile.visitor_id)


def test_an_upper_bound_on_a_nullable_field_is_written_so_none_satisfies_it():
    assert condition("average_scroll_depth", "lte", 50) == {"not": {"field": "profile.average_scroll_depth", "op": "gt", "value": 50}}
    assert condition("page_views", "lte", 3) == {"field": "profile.page_views", "op": "lte", "value": 3}


def test_windowed_features_declare_their_windows():
    assert feature_rule_field("searches_7d") == {"count": {"event": "search", "within_hours": 168}}
    assert {(w.counter, w.hours) for w in FEATURE_WINDOWS} == {
        ("page_view", 168), ("search", 168), ("add_to_cart", 168), ("search", 2160), ("add_to_cart", 2160)
    }


def test_select_picks_named_columns_in_order():
    row = list(range(len(feature_names)))
    assert select([row], ["purchases", "page_views"]) == [[feature_names.index("purchases"), 0]]
    assert set(PERSONA_FEATURES) <= set(feature_names)
