"""One rule-to-sentence renderer (issue 16 item 4): every condition kind of the rule language,
every operator, `not` pushed down to the conditions, nested groups in parentheses, and what a
condition saw in words. Every rule here compiles: the sentences describe rules that exist."""

from __future__ import annotations

import pytest

from tailored.core.rules import compile_rule
from tailored.events.schema import EVENT_TYPES
from tailored.rule_sentences import condition_words, saw, sentence

ELECTRONICS_3 = {"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 3}
MOBILE = {"field": "context.device", "op": "eq", "value": "mobile"}


def said(rule) -> str:
    compile_rule(rule, known_events=EVENT_TYPES)  # a rule the compiler accepts
    return sentence(rule)


def test_the_issues_example_reads_as_one_sentence():
    rule = {"all": [ELECTRONICS_3, MOBILE]}
    assert said(rule) == (
        "Visitors who viewed electronics products at least 3 times in the last 24 hours and are on a mobile device."
    )


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        ({"field": "profile.sessions", "op": "eq", "value": 1}, "whose sessions are 1"),
        ({"field": "profile.sessions", "op": "ne", "value": 1}, "whose sessions are not 1"),
        ({"field": "profile.lifetime_value", "op": "gt", "value": 500}, "whose lifetime value is more than 500"),
        ({"field": "profile.page_views", "op": "gte", "value": 3}, "whose page views are at least 3"),
        ({"field": "context.local_hour", "op": "lt", "value": 9}, "whose local hour (0-23) is less than 9"),
        ({"field": "profile.days_since_last_seen", "op": "lte", "value": 7}, "whose days since last seen are at most 7"),
        ({"field": "profile.average_scroll_depth", "op": "between", "value": [25, 75.5]}, "whose average scroll depth (%) is between 25 and 75.5"),
        ({"field": "context.os", "op": "in", "value": ["iOS", "Android"]}, "whose operating system is \u201ciOS\u201d or \u201cAndroid\u201d"),
        ({"field": "context.browser", "op": "not_in", "value": ["Chrome", "Edge"]}, "whose browser is neither \u201cChrome\u201d nor \u201cEdge\u201d"),
        ({"field": "context.utm_source", "op": "not_in", "value": ["a", "b", "c"]}, "whose UTM source is none of \u201ca\u201d, \u201cb\u201d or \u201cc\u201d"),
        ({"field": "context.city", "op": "contains", "value": "ford"}, "whose city contains \u201cford\u201d"),
        ({"field": "profile.cart_items", "op": "contains", "value": "42"}, "whose cart items include \u201c42\u201d"),
        ({"field": "context.utm_campaign", "op": "matches", "value": "^spring"}, "whose UTM campaign matches the pattern \u201c^spring\u201d"),
        ({"field": "context.weather", "op": "eq", "value": "rain"}, "whose weather is rain"),
        ({"field": "context.referrer_class", "op": "eq", "value": "search"}, "whose referrer type is search"),
        ({"field": "profile.persona", "op": "eq", "value": "researcher"}, "whose persona is \u201cresearcher\u201d"),
        ({"field": "score.churn_risk", "op": "gte", "value": 0.7}, "whose churn risk score is at least 0.7"),
        ({"field": "profile.session_converted", "op": "eq", "value": True}, "who converted this session"),
        ({"field": "profile.session_converted", "op": "eq", "value": False}, "who have not converted this session"),
        ({"field": "context.device", "op": "in", "value": ["mobile", "tablet"]}, "who are on a mobile or tablet device"),
        ({"field": "context.device", "op": "ne", "value": "desktop"}, "who are not on a desktop device"),
        ({"field": "context.daypart", "op": "in", "value": ["morning", "night"]}, "who visit in the morning or at night"),
        ({"field": "context.weekday", "op": "in", "value": ["sat", "sun"]}, "who visit on Saturday or Sunday"),
        ({"field": "context.country", "op": "eq", "value": "GB"}, "who are in GB"),
        ({"field": "context.region", "op": "not_in", "value": ["US-CA"]}, "who are not in US-CA"),
    ],
)
def test_field_conditions_with_each_operator(condition, words):
    assert said(condition) == f"Visitors {words}."


@pytest.mark.parametrize(
    ("condition", "words"),
    [
        (ELECTRONICS_3, "who viewed electronics products at least 3 times in the last 24 hours"),
        ({"count": {"event": "page_view", "item": "42", "within_hours": 168}, "op": "eq", "value": 1}, "who viewed product 42 once in the last 7 days"),
        ({"count": {"event": "add_to_cart", "within_hours": 1}, "op": "gt", "value": 2}, "who added products to the cart more than 2 times in the last hour"),
        ({"count": {"event": "add_to_cart", "category": "books", "within_hours": 48}, "op": "lt", "value": 1}, "who added books products to the cart not at all in the last 48 hours"),
        ({"count": {"event": "search", "within_hours": 2160}, "op": "between", "value": [2, 5]}, "who searched between 2 and 5 times in the last 90 days"),
        ({"count": {"event": "purchase", "within_hours": 720}, "op": "lte", "value": 4}, "who bought something at most 4 times in the last 30 days"),
        ({"count": {"event": "click", "category": "outdoors", "within_hours": 12}, "op": "ne", "value": 0}, "who clicked in outdoors a number of times other than 0 in the last 12 hours"),
        ({"count": {"event": "video_play", "within_hours": 24}, "op": "in", "value": [1, 2]}, "who played videos 1 or 2 times in the last 24 hours"),
        ({"avg_dwell": {"category": "books"}, "op": "gte", "value": 30}, "whose average time on books pages per visit is at least 30 seconds"),
        ({"sequence": {"views": 3, "within_minutes": 10}}, "who viewed at least 3 products in the last 10 minutes"),
        ({"cart_abandoned": {"idle_minutes": 60}}, "who left items in their cart for at least 1 hour without buying"),
        ({"cart_abandoned": {"idle_minutes": 2880}}, "who left items in their cart for at least 2 days without buying"),
    ],
)
def test_counts_dwell_sequences_and_carts(condition, words):
    assert said(condition) == f"Visitors {words}."


def test_not_is_pushed_down_to_the_conditions():
    assert said({"not": ELECTRONICS_3}) == "Visitors who viewed electronics products fewer than 3 times in the last 24 hours."
    assert said({"not": MOBILE}) == "Visitors who are not on a mobile device."
    assert said({"not": {"not": MOBILE}}) == "Visitors who are on a mobile device."
    # A field may be unknown: "is not more than" (not "at most") keeps that meaning.
    scroll = {"not": {"field": "profile.average_scroll_depth", "op": "gt", "value": 50}}
    assert said(scroll) == "Visitors whose average scroll depth (%) is not more than 50."
    # not(any) is all(not ...), not(all) is any(not ...)
    either = {"not": {"any": [{"sequence": {"views": 3, "within_minutes": 10}}, {"cart_abandoned": {"idle_minutes": 30}}]}}
    assert said(either) == (
        "Visitors who did not view at least 3 products in the last 10 minutes "
        "and have not left items in their cart for at least 30 minutes without buying."
    )
    both = {"not": {"all": [{"field": "profile.session_converted", "op": "eq", "value": True}, {"field": "context.os", "op": "contains", "value": "iOS"}]}}
    assert said(both) == "Visitors who have not converted this session or whose operating system does not contain \u201ciOS\u201d."
    between = {"not": {"count": {"event": "search", "within_hours": 24}, "op": "between", "value": [1, 4]}}
    assert said(between) == "Visitors who searched not at all or more than 4 times in the last 24 hours."


def test_nested_groups_sit_in_parentheses():
    rule = {"any": [
        {"all": [ELECTRONICS_3, MOBILE]},
        {"all": [{"field": "score.purchase_intent", "op": "gt", "value": 0.5}]},  # a group of one reads as its condition
        {"not": {"any": [{"field": "profile.persona", "op": "eq", "value": "bargain-hunter"}, {"avg_dwell": {"category": "books"}, "op": "lt", "value": 10}]}},
    ]}
    assert said(rule) == (
        "Visitors (who viewed electronics products at least 3 times in the last 24 hours and are on a mobile device)"
        " or whose purchase intent score is more than 0.5"
        " or (whose persona is not \u201cbargain-hunter\u201d and whose average time on books pages per visit is not less than 10 seconds)."
    )


def test_a_node_it_does_not_know_reads_as_its_json_and_never_raises():
    assert sentence({"future": {"x": 1}}) == 'Visitors who match {"future": {"x": 1}}.'
    assert sentence({"count": "broken", "op": "gte", "value": 1}).startswith("Visitors who match ")
    assert sentence(None) == "Visitors who match null."


def test_what_a_condition_saw_in_words():
    assert saw(ELECTRONICS_3, 2) == "2 times" and saw(ELECTRONICS_3, 1) == "once" and saw(ELECTRONICS_3, 0) == "0 times"
    assert saw(MOBILE, "desktop") == "desktop"
    assert saw({"field": "score.churn_risk", "op": "gte", "value": 0.7}, None) == "not known"
    assert saw({"field": "profile.recent_searches", "op": "contains", "value": "tent"}, []) == "nothing yet"
    assert saw({"field": "profile.cart_items", "op": "contains", "value": "4"}, ["4", "9"]) == "4, 9"
    assert saw({"field": "context.weekday", "op": "eq", "value": "sat"}, "sun") == "Sunday"
    assert saw({"field": "profile.session_converted", "op": "eq", "value": True}, False) == "no"
    assert saw({"avg_dwell": {"category": "books"}, "op": "gte", "value": 30}, 12.345) == "12.3 seconds"
    assert saw({"sequence": {"views": 3, "within_minutes": 10}}, 1) == "1 product viewed"
    assert saw({"cart_abandoned": {"idle_minutes": 60}}, None) == "no abandoned cart"
    assert saw({"cart_abandoned": {"idle_minutes": 60}}, 7200.0) == "cart unchanged for 2 hours"


def test_a_condition_on_its_own_drops_the_pronoun():
    assert condition_words(ELECTRONICS_3) == "viewed electronics products at least 3 times in the last 24 hours"
    assert condition_words({"field": "profile.sessions", "op": "lte", "value": 1}) == "sessions are at most 1"
