import pytest

from tailored.core.context import daypart, daypart_at, daypart_starts
from tailored.core.counters import RECENT_ITEMS, PriorState, apply_cart, delta_for
from tailored.core.rules import compile_rule
from tailored.core.segments import SegmentDefinition, SegmentSet, matching_segments
from tailored.core.types import Context, Event, Profile, Window, counter_keys
from tailored.core.windows import window_buckets, window_count


@pytest.mark.parametrize(
    ("hour", "expected"),
    [(4, "night"), (5, "morning"), (11, "morning"), (12, "afternoon"), (16, "afternoon"), (17, "evening"), (21, "evening"), (22, "night"), (0, "night")],
)
def test_daypart_boundaries(hour, expected):
    assert daypart(hour) == expected


def ev(event_id, kind, ts, **fields):
    attrs = {k: v for k, v in fields.items() if k not in ("category", "item", "url")}
    return Event(event_id, kind, ts=float(ts), category=fields.get("category"), item=fields.get("item"), url=fields.get("url"), attrs=attrs)


def test_counter_keys_narrow_by_category_and_item():
    assert counter_keys("page_view", "books", "7") == ("page_view", "page_view|c:books", "page_view|i:7")
    assert counter_keys("search") == ("search",)
    assert counter_keys("click", None, "7") == ("click",)  # per-item counts only for views and carts


def test_delta_counts_views_per_hour_and_orders_items():
    events = [
        ev("b", "page_view", 7210, category="books", item="2"),
        ev("a", "page_view", 3605, category="books", item="1"),
        ev("c", "page_view", 7220, category="electronics", item="3"),
    ]
    delta = delta_for(events)
    assert delta.page_views == 3
    assert delta.buckets[("page_view|c:books", 1)] == 1
    assert delta.buckets[("page_view|c:books", 2)] == 1
    assert delta.buckets[("page_view", 2)] == 2
    assert delta.category_views == {"books": 2, "electronics": 1}
    assert [item for item, _ in delta.items] == ["1", "2", "3"]
    assert (delta.first_ts, delta.last_ts) == (3605.0, 7220.0)


def test_delta_keeps_only_the_most_recent_items():
    events = [ev(str(i), "page_view", i, item=str(i)) for i in range(RECENT_ITEMS + 10)]
    items = delta_for(events).items
    assert len(items) == RECENT_ITEMS and items[-1][0] == str(RECENT_ITEMS + 9)


def test_sessions_start_after_a_gap_of_inactivity():
    events = [ev("a", "page_view", 1000), ev("b", "page_view", 1500), ev("c", "page_view", 1500 + 1801)]
    assert delta_for(events, PriorState(), session_gap=1800).session.starts == [1000.0, 3301.0]
    assert delta_for(events, PriorState(last_seen=900.0), session_gap=1800).session.starts == [3301.0]
    late = [ev("d", "page_view", 500)]  # an offline event older than the last seen
    assert delta_for(late, PriorState(last_seen=900.0), session_gap=1800).session.starts == []


def test_content_views_and_conversion_are_per_session():
    events = [
        ev("a", "page_view", 0, page_type="article"),
        ev("b", "page_view", 10, page_type="article"),
        ev("c", "page_view", 10_000, page_type="article"),
    ]
    session = delta_for(events).session
    assert (session.content_views, session.converted) == (1, False)
    bought = delta_for([*events, ev("d", "purchase", 10_010, order_id="o", value=5.0)]).session
    assert bought.converted


def test_cart_adds_removes_and_purchase_resets():
    delta = delta_for([
        ev("a", "add_to_cart", 1, item="7", quantity=2),
        ev("b", "remove_from_cart", 2, item="7", quantity=1),
        ev("c", "add_to_cart", 3, item="8"),
    ])
    assert apply_cart({"9": 1}, delta.cart) == {"9": 1, "7": 1, "8": 1}
    after_purchase = delta_for([ev("a", "add_to_cart", 1, item="7"), ev("p", "purchase", 2, order_id="o", value=30), ev("c", "add_to_cart", 3, item="8")])
    assert apply_cart({"9": 1}, after_purchase.cart) == {"8": 1}
    assert (after_purchase.purchases, after_purchase.revenue) == (1, 30.0)
    assert apply_cart({"7": 1}, delta_for([ev("r", "remove_from_cart", 1, item="7", quantity=5)]).cart) == {}
    whole_line = delta_for([ev("a", "add_to_cart", 1, item="7", quantity=3), ev("r", "remove_from_cart", 2, item="7"), ev("b", "add_to_cart", 3, item="7")])
    assert apply_cart({"7": 4}, whole_line.cart) == {"7": 1}  # a removal without quantity empties the line


def test_dwell_scroll_searches_and_votes():
    delta = delta_for([
        ev("a", "dwell", 1, category="books", seconds=12.5),
        ev("b", "dwell", 2, category="books", seconds=7.5),
        ev("c", "scroll_depth", 3, depth=50),
        ev("d", "scroll_depth", 4, depth=100),
        ev("e", "search", 5, query="tent"),
        ev("f", "recommendation_feedback", 6, item="3", vote="down"),
        # A section's dwell is part of its page's time, not another visit of the category.
        ev("g", "dwell", 7, category="books", seconds=30.0, section="reviews"),
    ])
    assert delta.dwell == {"books": (20.0, 2)}
    assert delta.event_counts["dwell"] == 3
    assert delta.scroll == (150, 2)
    assert delta.searches == ("tent",)
    assert delta.votes == {"3": "down"}


def test_window_buckets_are_hourly_up_to_48_hours_then_daily():
    assert window_buckets(3, now_hour=100) == ("h", range(98, 101))
    kind, days = window_buckets(49, now_hour=100)
    assert kind == "d" and list(days) == [2, 3, 4]
    assert window_count({99: 2, 100: 1, 50: 7}, {}, 2, now_hour=100) == 3


def test_profile_helpers():
    profile = Profile(session_starts=(100.0, 50.0, 10.0), recent_items=(("a", 95.0), ("b", 20.0)), scroll=(150, 2), dwell={"books": (30.0, 3)})
    assert profile.sessions_within(60, now=100.0) == 2
    assert profile.items_viewed_within(10, now=100.0) == 1
    assert profile.average_scroll_depth == 75
    assert profile.average_dwell("books") == 10
    assert profile.average_dwell("outdoors") is None
    assert profile.count_within(Window("page_view", 24)) == 0


def test_matching_segments_returns_the_slugs_that_hold():
    segments = [
        SegmentDefinition("mobile", compile_rule({"field": "context.device", "op": "eq", "value": "mobile"})),
        SegmentDefinition("fans", compile_rule({"count": {"event": "page_view", "category": "books", "within_hours": 24}, "op": "gte", "value": 3})),
    ]
    assert matching_segments(segments, Profile(), Context(device="mobile"), 0.0) == frozenset({"mobile"})
    assert SegmentSet(tuple(segments)).windows == {Window("page_view|c:books", 24)}


def test_a_page_view_counts_for_its_page_and_every_section_it_is_in():
    assert counter_keys("page_view", pages=("4", "12", "19")) == (
        "page_view", "page_view|p:19", "page_view|s:4", "page_view|s:12", "page_view|s:19",
    )
    assert counter_keys("click", pages=("4",)) == ("click",)  # pages count page views only


def test_page_visit_rules_see_the_counts_a_batch_makes():
    delta = delta_for([ev("a", "page_view", 7200, pages="4 12 19"), ev("b", "page_view", 7300, pages="4 13")])
    assert delta.buckets[("page_view|s:4", 2)] == 2
    assert delta.buckets[("page_view|p:19", 2)] == 1
    assert ("page_view|p:12", 2) not in delta.buckets  # 12 is a section here, not the page viewed
    section = compile_rule({"count": {"event": "page_view", "section": 4, "within_hours": 1}, "op": "gte", "value": 2})
    (window,) = section.windows
    assert window == Window("page_view|s:4", 1)
    profile = Profile(windows={window: delta.buckets[("page_view|s:4", 2)]})
    assert section.matches(profile, Context(), 7300)


@pytest.mark.parametrize(
    ("minute", "expected"),
    [(0, "night"), (299, "night"), (300, "morning"), (719, "morning"), (720, "afternoon"), (1319, "evening"), (1320, "night")],
)
def test_dayparts_to_the_minute(minute, expected):
    assert daypart_at(minute) == expected


def test_daypart_settings_are_checked():
    with pytest.raises(ValueError, match="start time for each of morning"):
        daypart_starts({"morning": "05:00"})
    with pytest.raises(ValueError, match="must be a time"):
        daypart_starts({"morning": "5am", "afternoon": "12:00", "evening": "17:00", "night": "22:00"})
    with pytest.raises(ValueError, match="distinct"):
        daypart_starts({"morning": "05:00", "afternoon": "05:00", "evening": "17:00", "night": "22:00"})
    late = daypart_starts({"morning": "06:00", "afternoon": "12:00", "evening": "18:00", "night": "23:30"})
    assert [daypart_at(m, late) for m in (359, 360, 23 * 60 + 29, 23 * 60 + 30)] == ["night", "morning", "evening", "night"]


def test_a_new_visit_notes_its_landing_page_and_kept_parameters():
    events = [
        ev("a", "page_view", 1000, url="/old/", keep="promo=x"),
        ev("b", "page_view", 9000, url="/offers/spring/", keep="promo=spring"),  # a new visit
        ev("c", "page_view", 9060, url="/products/"),
    ]
    delta = delta_for(events, PriorState(last_seen=500))
    assert delta.session.landing == ("/offers/spring/", "promo=spring")
    assert delta_for(events[2:], PriorState(last_seen=9000)).session.landing is None  # same visit
