"""One contract, every ProfileStore backend: memory and a real Redis."""

from __future__ import annotations

import time

from tailored.core.types import Event, Window
from tailored.profiles import ProfileStore

NOW = time.time()
BOOKS_24H = Window("page_view|c:books", 24)
ELECTRONICS_24H = Window("page_view|c:electronics", 24)


def ev(event_id: str, kind: str = "page_view", hours_ago: float = 0.0, category: str | None = "books", item: str | None = None, **attrs) -> Event:
    return Event(event_id, kind, ts=NOW - hours_ago * 3600, category=category, item=item, attrs=attrs)


def test_backend_satisfies_the_protocol(store):
    assert isinstance(store, ProfileStore)
    assert store.ping()


def test_unknown_visitor_has_an_empty_profile(store):
    profile = store.get("0" * 32, NOW, [BOOKS_24H])
    assert profile.visitor_id == "0" * 32
    assert (profile.page_views, profile.last_seen, profile.recent_items, dict(profile.cart)) == (0, None, (), {})
    assert profile.count_within(BOOKS_24H) == 0


def test_windowed_counts_are_exact_to_the_hour(store):
    # A 24-hour window is the current hour and the 23 before it, whatever the minute now.

    store.record("v1", [ev("a", item="1"), ev("b", item="2", hours_ago=22.5), ev("c", hours_ago=25.5), ev("d", category="electronics")], NOW)
    profile = store.get("v1", NOW, [BOOKS_24H, ELECTRONICS_24H, Window("page_view|c:books", 1), Window("page_view|i:2", 48), Window("page_view", 2160)])
    assert profile.count_within(BOOKS_24H) == 2
    assert profile.count_within(Window("page_view|c:books", 1)) == 1
    assert profile.count_within(ELECTRONICS_24H) == 1
    assert profile.count_within(Window("page_view|i:2", 48)) == 1
    assert profile.count_within(Window("page_view", 2160)) == 4
    assert profile.page_views == 4
    assert dict(profile.category_views) == {"books": 3, "electronics": 1}


def test_duplicate_event_ids_are_counted_once(store):
    first = store.record("v1", [ev("a"), ev("b")], NOW)
    again = store.record("v1", [ev("b"), ev("c")], NOW)
    assert (len(first.stored), first.duplicates) == (2, 0)
    assert ([e.id for e in again.stored], again.duplicates) == (["c"], 1)
    assert store.get("v1", NOW).page_views == 3


def test_the_rate_limit_refuses_whole_batches_and_forgets_them(store):
    store.rate_limit = 3
    assert len(store.record("v1", [ev("a"), ev("b")], NOW).stored) == 2
    refused = store.record("v1", [ev("c"), ev("d")], NOW)
    assert refused.rate_limited and refused.stored == ()
    assert store.get("v1", NOW).page_views == 2
    later = store.record("v1", [ev("c"), ev("d")], NOW + 61)  # the next minute: not duplicates
    assert len(later.stored) == 2


def test_recent_items_are_newest_first_across_batches(store):
    store.record("v1", [ev("a", item="1", hours_ago=2), ev("b", item="2", hours_ago=1)], NOW)
    store.record("v1", [ev("c", item="3")], NOW)
    assert [item for item, _ in store.get("v1", NOW).recent_items] == ["3", "2", "1"]


def test_first_and_last_seen_keep_the_extremes(store):
    store.record("v1", [ev("a", hours_ago=1)], NOW)
    store.record("v1", [ev("b", hours_ago=3)], NOW)  # a late, older batch
    profile = store.get("v1", NOW)
    assert (profile.first_seen, profile.last_seen) == (NOW - 3 * 3600, NOW - 3600)


def test_sessions_follow_inactivity_gaps(store):
    store.record("v1", [ev("a", hours_ago=5), ev("b", hours_ago=4.9)], NOW)
    store.record("v1", [ev("c", hours_ago=1)], NOW)
    store.record("v1", [ev("d", hours_ago=0.9)], NOW)
    profile = store.get("v1", NOW)
    assert profile.sessions == 2
    assert profile.session_start == NOW - 3600
    assert profile.sessions_within(7 * 86400, NOW) == 2


def test_cart_purchases_and_lifetime_value(store):
    store.record("v1", [ev("a", "add_to_cart", item="7", quantity=2), ev("b", "add_to_cart", item="8")], NOW)
    store.record("v1", [ev("c", "remove_from_cart", item="7", quantity=1)], NOW)
    assert dict(store.get("v1", NOW).cart) == {"7": 1, "8": 1}
    store.record("v1", [ev("c2", "remove_from_cart", item="8")], NOW)  # the whole line
    assert dict(store.get("v1", NOW).cart) == {"7": 1}
    store.record("v1", [ev("d", "purchase", order_id="o1", value=120.5, hours_ago=-0.01)], NOW)
    profile = store.get("v1", NOW)
    assert dict(profile.cart) == {}
    assert (profile.purchases, profile.lifetime_value) == (1, 120.5)
    assert profile.last_purchase_at is not None and profile.cart_updated_at is not None


def test_dwell_scroll_searches_votes_and_event_counts(store):
    store.record("v1", [
        ev("a", "dwell", seconds=10.0), ev("b", "dwell", seconds=20.0),
        ev("c", "scroll_depth", depth=50), ev("d", "scroll_depth", depth=100),
        ev("e", "search", query="tent"), ev("f", "search", query="boots", hours_ago=-0.001),
        ev("g", "recommendation_feedback", item="3", vote="down"), ev("h", "click", target="hero"),
    ], NOW)
    profile = store.get("v1", NOW)
    assert profile.average_dwell("books") == 15.0
    assert profile.average_scroll_depth == 75.0
    assert profile.recent_searches == ("boots", "tent")
    assert profile.down_votes == {"3"}
    assert profile.event_counts["click"] == 1 and profile.event_counts["dwell"] == 2


def test_visitors_are_isolated_and_read_together(store):
    store.record("v1", [ev("a")], NOW)
    store.record("v2", [ev("b"), ev("c")], NOW)
    profiles = store.get_many(["v1", "v2", "v3"], NOW, [BOOKS_24H])
    assert {k: p.count_within(BOOKS_24H) for k, p in profiles.items()} == {"v1": 1, "v2": 2, "v3": 0}


def test_merge_sums_once_and_removes_the_source(store):
    store.record("anon", [ev("a", item="1"), ev("b", "add_to_cart", item="7")], NOW)
    store.record("user", [ev("c", item="2"), ev("d", "add_to_cart", item="7")], NOW)
    store.merge("anon", "user", NOW)
    store.merge("anon", "user", NOW)  # a second merge finds nothing to add
    user = store.get("user", NOW, [BOOKS_24H])
    assert user.page_views == 2 and user.count_within(BOOKS_24H) == 2
    assert dict(user.cart) == {"7": 2}
    assert store.get("anon", NOW).page_views == 0
    assert store.record("user", [ev("a")], NOW).duplicates == 1  # the source's events stay seen


def test_erase_removes_everything(store):
    store.record("v1", [ev("a", item="1"), ev("b", "add_to_cart", item="7")], NOW)
    store.erase("v1")
    profile = store.get("v1", NOW, [BOOKS_24H])
    assert (profile.page_views, profile.recent_items, dict(profile.cart), profile.count_within(BOOKS_24H)) == (0, (), {}, 0)
    assert store.export("v1", NOW)["counters"] == {}


def test_export_holds_the_profile_and_raw_counters(store):
    store.record("v1", [ev("a", item="1")], NOW)
    exported = store.export("v1", NOW)
    assert exported["profile"]["page_views"] == 1
    assert exported["profile"]["recent_items"][0]["item"] == "1"
    assert any(name.startswith("page_view|c:books|h") for name in exported["counters"])


def test_empty_batch_changes_nothing(store):
    assert store.record("v1", [], NOW).stored == ()
    assert store.get("v1", NOW).page_views == 0


def test_onboarding_preferences_replace_the_previous_answer(store):
    store.set_preferences("v1", ["books", "outdoors"])
    store.set_preferences("v1", ["outdoors", "beauty"])
    assert store.get("v1", NOW).preferences == ("outdoors", "beauty")
    assert store.export("v1", NOW)["profile"]["preferences"] == ["outdoors", "beauty"]


def test_model_outputs_are_written_only_to_held_profiles(store):
    store.record("v1", [ev("a")], NOW)
    written = store.set_model_outputs({"v1": ("researcher", {"churn_risk": 0.25}), "nobody": ("researcher", {"churn_risk": 0.9})})
    assert written == 1
    store.set_model_outputs({"v1": ("bargain-hunter", {"purchase_intent": 0.5})})
    profile = store.get("v1", NOW)
    assert profile.persona == "bargain-hunter"
    assert dict(profile.scores) == {"churn_risk": 0.25, "purchase_intent": 0.5}
    assert store.get("nobody", NOW).persona is None


def test_an_experiment_arm_is_sticky_and_travels_with_the_profile(store):
    assert store.assign("v1", "hero-test", "b") == "b"
    assert store.assign("v1", "hero-test", "a") == "b"  # weights changed: the visitor keeps b
    assert store.assign("v1", "other", "a") == "a"
    assert dict(store.get("v1", NOW).assignments) == {"hero-test": "b", "other": "a"}
    assert store.export("v1", NOW)["profile"]["assignments"] == {"hero-test": "b", "other": "a"}
    store.clear_assignments("hero-test", ["v1"])
    assert dict(store.get("v1", NOW).assignments) == {"other": "a"}


def test_merge_keeps_the_targets_arms_and_adds_the_sources(store):
    store.record("anon", [ev("a")], NOW)
    store.assign("anon", "hero-test", "b")
    store.assign("anon", "layout", "wide")
    store.assign("user", "hero-test", "a")
    store.merge("anon", "user", NOW)
    assert dict(store.get("user", NOW).assignments) == {"hero-test": "a", "layout": "wide"}


def test_erase_forgets_the_arms(store):
    store.assign("v1", "hero-test", "b")
    store.erase("v1")
    assert dict(store.get("v1", NOW).assignments) == {}


def test_analytics_only_recording_builds_no_profile_but_still_deduplicates(store):
    first = store.record("v1", [ev("a", item="1"), ev("b")], NOW, build_profile=False)
    again = store.record("v1", [ev("b"), ev("c")], NOW, build_profile=False)
    assert [e.id for e in first.stored] == ["a", "b"]
    assert ([e.id for e in again.stored], again.duplicates) == (["c"], 1)
    profile = store.get("v1", NOW, [BOOKS_24H])
    assert (profile.page_views, profile.recent_items, profile.last_seen) == (0, (), None)
    assert profile.count_within(BOOKS_24H) == 0
    assert store.recent_visitors(NOW - 60, 10) == []
