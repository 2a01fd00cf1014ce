"""Issue 22, item 1: nothing the visitor has is recommended. The per-visitor set of viewed,
carted and bought ids (tailored.seen_items) on both stores, and its use by the block."""

from __future__ import annotations

import time

import pytest

from tailored import seen_items
from tailored.core.types import Event
from tailored.worker import DecodedEntry

NOW = 1_700_000_000.0


def test_events_name_what_the_visitor_has():
    assert seen_items.items_of("page_view", "7", {}) == ["7"]
    assert seen_items.items_of("add_to_cart", "8", None) == ["8"]
    assert seen_items.items_of("purchase", "", {"items": [3, {"product_id": 4}, {"id": "5"}, True]}) == ["3", "4", "5"]
    assert seen_items.items_of("search", "9", {}) == []


def test_the_set_keeps_the_newest_ids_up_to_its_cap_and_is_forgotten(store, personalization):
    personalization(SEEN_ITEMS_CAP=3)
    assert seen_items.get("v1", store) == frozenset()
    assert seen_items.add({"v1": {"a": NOW, "b": NOW + 1, "c": NOW + 2}}, store) == 1
    seen_items.add({"v1": {"d": NOW + 3, "a": NOW + 4}, "v2": {"x": NOW}}, store)
    assert seen_items.get("v1", store) == {"a", "c", "d"}  # b was the oldest
    assert seen_items.get("v2", store) == {"x"}
    seen_items.forget("v1", store)
    assert seen_items.get("v1", store) == frozenset() and seen_items.get("v2", store) == {"x"}


def test_the_redis_set_shares_the_visitors_hash_tag_and_expires(redis_client, store):
    if getattr(store, "client", None) is None:
        pytest.skip("Redis only")
    seen_items.add({"v9": {"a": NOW}}, store)
    assert redis_client.ttl("tl:v1:{v9}:had") > 0


def test_the_worker_records_only_personalization_consented_entries():
    entries = [
        DecodedEntry("1-0", "v1", [Event("e1", "page_view", NOW, item="3"), Event("e2", "purchase", NOW + 1, attrs={"items": [4]})]),
        DecodedEntry("2-0", "v2", [Event("e3", "page_view", NOW, item="5")], analytics_only=True),
    ]
    assert seen_items.from_entries(entries) == {"v1": {"3": NOW, "4": NOW + 1}}


@pytest.mark.django_db
def test_the_block_never_recommends_an_old_purchase_or_anything_seen(settings, tmp_path):
    from cms.models import ProductPage
    from tailored import conf
    from tailored.blocks import products as catalog
    from tailored.ml import registry
    from tailored.ml.catalog import demo_catalog
    from tailored.ml.recommender import Interaction, train_recommender

    settings.PERSONALIZATION = {"PRODUCT_MODEL": "cms.ProductPage", "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore", "MODEL_DIR": str(tmp_path)}
    now = time.time()
    a, b, c, d = (str(pk) for pk in ProductPage.objects.live().filter(in_stock=True).values_list("pk", flat=True)[:4])
    # Everyone who viewed a also viewed b, c and d: b, c, d are a's strongest neighbours.
    events = [Interaction(f"v{n}", item, "view", now - 60 + i) for n in range(40) for i, item in enumerate((a, b, c, d))]
    registry.publish(catalog.RECOMMENDER, train_recommender(events, demo_catalog(), now=now, seed=1), {})
    store = conf.get_profile_store()
    store.record("c" * 32, [Event("e1", "page_view", now - 5, item=a, attrs={"page_type": "product"})], now)
    profile = store.get("c" * 32, now)
    assert {b, c} <= {str(p.pk) for p in catalog.recommended(profile, 3)}
    # b was bought months ago and c viewed long ago: neither is in the profile's recent list.
    seen_items.add({"c" * 32: {b: now - 90 * 86400, c: now - 60 * 86400}})
    shown = {str(p.pk) for p in catalog.recommended(profile, 3)}
    assert shown and not shown & {a, b, c}
