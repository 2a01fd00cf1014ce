"""One contract, every ProfileStore backend: memory and a real Redis."""

from __future__ import annotations

import time

from personalization.core.types import Event, hour_bucket
from personalization.profiles import ProfileStore

NOW = time.time()


def view(event_id: str, category: str, item: str, hours_ago: float = 0.0) -> Event:
    return Event(event_id, "page_view", ts=NOW - hours_ago * 3600, category=category, item=item)


def test_backend_satisfies_the_protocol(store):
    assert isinstance(store, ProfileStore)
    assert store.ping()


def test_unknown_visitor_has_an_empty_profile(store):
    profile = store.get("0" * 32, NOW)
    assert profile.visitor_id == "0" * 32
    assert profile.page_views == 0
    assert profile.last_seen is None
    assert dict(profile.category_views) == {}
    assert profile.recent_items == ()


def test_recorded_views_are_read_back_in_hour_buckets(store):
    store.record("v1", [view("a", "electronics", "11"), view("b", "electronics", "12"), view("c", "books", "13", hours_ago=5)])
    profile = store.get("v1", NOW)
    assert profile.page_views == 3
    assert profile.category_views["electronics"] == {hour_bucket(NOW): 2}
    assert profile.category_views["books"] == {hour_bucket(NOW - 5 * 3600): 1}
    assert profile.views_within("electronics", 24, NOW) == 2
    assert profile.recent_items == ("12", "11", "13")  # newest first; equal times keep batch order


def test_recent_items_are_newest_first_across_batches(store):
    store.record("v1", [view("a", "books", "1", hours_ago=2), view("b", "books", "2", hours_ago=1)])
    store.record("v1", [view("c", "books", "3")])
    assert store.get("v1", NOW).recent_items == ("3", "2", "1")


def test_first_and_last_seen_keep_the_extremes(store):
    store.record("v1", [view("a", "books", "1", hours_ago=1)])
    store.record("v1", [view("b", "books", "2", hours_ago=3)])  # a late, older batch
    profile = store.get("v1", NOW)
    assert profile.first_seen == NOW - 3 * 3600
    assert profile.last_seen == NOW - 3600


def test_buckets_older_than_the_window_are_dropped(store):
    store.record("v1", [view("a", "books", "1", hours_ago=60), view("b", "books", "2")])
    profile = store.get("v1", NOW)
    assert profile.category_views["books"] == {hour_bucket(NOW): 1}
    assert store.get("v1", NOW).category_views["books"] == {hour_bucket(NOW): 1}


def test_visitors_are_isolated(store):
    store.record("v1", [view("a", "books", "1")])
    assert store.get("v2", NOW).page_views == 0


def test_get_many_reads_several_profiles(store):
    store.record("v1", [view("a", "books", "1")])
    store.record("v2", [view("b", "books", "2"), view("c", "books", "3")])
    profiles = store.get_many(["v1", "v2", "v3"], NOW)
    assert {k: p.page_views for k, p in profiles.items()} == {"v1": 1, "v2": 2, "v3": 0}


def test_erase_removes_everything(store):
    store.record("v1", [view("a", "books", "1")])
    store.erase("v1")
    profile = store.get("v1", NOW)
    assert profile.page_views == 0 and profile.recent_items == () and dict(profile.category_views) == {}


def test_empty_batch_changes_nothing(store):
    store.record("v1", [])
    assert store.get("v1", NOW).page_views == 0
