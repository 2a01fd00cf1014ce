import pytest

from personalization.core.context import daypart
from personalization.core.counters import RECENT_ITEMS, delta_for
from personalization.core.rules import compile_rule
from personalization.core.segments import SegmentDefinition, matching_segments
from personalization.core.types import Context, Event, Profile


@pytest.mark.parametrize(
    ("hour", "expected"),
    [(4, "night"), (5, "morning"), (11, "morning"), (12, "afternoon"), (16, "afternoon"), (17, "evening"), (21, "evening"), (22, "night"), (0, "night")],
)
def test_daypart_boundaries(hour, expected):
    assert daypart(hour) == expected


def test_delta_counts_category_views_per_hour_and_orders_items():
    events = [
        Event("b", "page_view", ts=7200.0 + 10, category="books", item="2"),
        Event("a", "page_view", ts=3600.0 + 5, category="books", item="1"),
        Event("c", "page_view", ts=7200.0 + 20, category="electronics", item="3"),
    ]
    delta = delta_for(events)
    assert delta.page_views == 3
    assert delta.category_hours == {("books", 1): 1, ("books", 2): 1, ("electronics", 2): 1}
    assert delta.items == ("1", "2", "3")
    assert (delta.first_ts, delta.last_ts) == (3605.0, 7220.0)


def test_delta_keeps_only_the_most_recent_items():
    events = [Event(str(i), "page_view", ts=float(i), item=str(i)) for i in range(RECENT_ITEMS + 10)]
    assert delta_for(events).items[-1] == str(RECENT_ITEMS + 9)
    assert len(delta_for(events).items) == RECENT_ITEMS


def test_views_within_counts_the_current_hour_and_back():
    now = 100 * 3600 + 1800
    profile = Profile(category_views={"books": {100: 1, 99: 2, 98: 4}})
    assert profile.views_within("books", 1, now) == 1
    assert profile.views_within("books", 2, now) == 3
    assert profile.views_within("books", 48, now) == 7
    assert profile.views_within("outdoors", 48, now) == 0


def test_matching_segments_returns_the_slugs_that_hold():
    segments = [
        SegmentDefinition("mobile", compile_rule({"field": "context.device", "op": "eq", "value": "mobile"})),
        SegmentDefinition("desktop", compile_rule({"field": "context.device", "op": "eq", "value": "desktop"})),
    ]
    assert matching_segments(segments, Profile(), Context(device="mobile"), 0.0) == frozenset({"mobile"})
