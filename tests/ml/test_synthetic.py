"""The synthetic visitor generator: deterministic, schema-valid, and behaviourally distinct."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from tailored.core.counters import delta_for
from tailored.events.schema import EVENT_TYPES, PRODUCT_FIELD, validate_event
from tailored.ml.catalog import CatalogItem
from tailored.ml.synthetic import generate_histories

NOW = 1_800_000_000.0
CATALOG = [
    CatalogItem(str(pk), f"Item {pk}", category, tags=(f"t{pk % 3}",), price=float(10 * pk))
    for pk, category in enumerate(["books", "outdoors", "beauty"] * 5, start=1)
]


@pytest.fixture(scope="module")
def histories():
    return generate_histories(CATALOG, visitors=300, days=28, seed=11, now=NOW)


def test_same_seed_same_histories_and_another_seed_differs(histories):
    assert generate_histories(CATALOG, visitors=300, days=28, seed=11, now=NOW) == histories
    other = generate_histories(CATALOG, visitors=300, days=28, seed=12, now=NOW)
    assert [v.visitor_id for v in other] != [v.visitor_id for v in histories]


def test_ids_are_hex_and_unique_and_events_ordered_within_the_period(histories):
    assert all(re.fullmatch(r"[0-9a-f]{32}", v.visitor_id) for v in histories)
    assert len({v.visitor_id for v in histories}) == len(histories)
    ids = [e.id for v in histories for e in v.events]
    assert len(ids) == len(set(ids))
    for visitor in histories:
        stamps = [e.ts for e in visitor.events]
        assert stamps == sorted(stamps)
        assert all(NOW - 28 * 86400 <= ts <= NOW for ts in stamps)


def test_every_event_passes_the_ingestion_schema(histories):
    for visitor in histories[:100]:
        for event in visitor.events:
            raw = {"type": event.type, "id": event.id, "ts": int(event.ts * 1000), **event.attrs}
            if event.category:
                raw["category"] = event.category
            if event.item and PRODUCT_FIELD in EVENT_TYPES[event.type]:
                raw[PRODUCT_FIELD] = int(event.item)
            result = validate_event(raw, 0, now=event.ts)
            assert not hasattr(result, "reason"), (raw, result)


def test_archetypes_behave_differently(histories):
    totals: dict[str, Counter] = defaultdict(Counter)
    for visitor in histories:
        delta = delta_for(visitor.events)
        totals[visitor.archetype].update(
            visitors=1, views=delta.page_views, carts=delta.event_counts.get("add_to_cart", 0), searches=delta.event_counts.get("search", 0)
        )
    per = {name: {k: c[k] / c["visitors"] for k in c} for name, c in totals.items()}
    assert set(per) == {"bargain_hunter", "researcher", "quick_buyer", "window_shopper", "loyal_returner"}
    assert per["researcher"]["searches"] > 2 * per["quick_buyer"]["searches"]
    assert per["bargain_hunter"]["carts"] > 3 * per["window_shopper"]["carts"]
    assert per["quick_buyer"]["views"] < per["researcher"]["views"]


def test_visitors_prefer_few_categories_and_purchases_follow_carts(histories):
    focused = eligible = 0
    for visitor in histories:
        views = Counter(e.category for e in visitor.events if e.type == "page_view" and e.item)
        if sum(views.values()) >= 10:
            eligible += 1
            focused += sum(n for _, n in views.most_common(2)) / sum(views.values()) >= 0.7
        carted: set[int] = set()
        for event in visitor.events:
            if event.type == "add_to_cart":
                carted.add(int(event.item))
            if event.type == "purchase":
                assert set(event.attrs["items"]) <= carted
    assert focused >= 0.8 * eligible > 0


def test_an_empty_catalog_is_refused():
    with pytest.raises(ValueError, match="no in-stock items"):
        generate_histories([], visitors=3)
