"""The recommender on a small shop whose right answers are known by construction."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import numpy as np
import pytest
import scipy.sparse as sp

from tailored.ml.catalog import CatalogItem, demo_catalog
from tailored.ml.ease import ease_weights
from tailored.ml.recommender import (
    Interaction,
    Recommender,
    RecommenderParams,
    blend_grid,
    interactions_from_events,
    train_recommender,
)
from tailored.ml.similarity import cosine_neighbours, interaction_matrix

NOW = 1_700_000_000.0
DAY = 86400.0
CATALOG = [
    *(CatalogItem(f"s{i}", f"running shoe model {i}", "shoes", tags=("shoe", "running")) for i in range(1, 5)),
    *(CatalogItem(f"h{i}", f"wool hat style {i}", "hats", tags=("hat", "wool")) for i in range(1, 5)),
    *(CatalogItem(f"b{i}", f"leather bag size {i}", "bags", tags=("bag",), in_stock=i != 4) for i in range(1, 5)),
]
CATEGORY = {item.id: item.category for item in CATALOG}
KNN_CONTENT = RecommenderParams(components=("knn", "content"))


def shop_interactions() -> list[Interaction]:
    """Shoe fans view s1+s2 (some s3), hat fans h1+h2 (some h3), a few view s1 and h1, bag fans
    b1+b2(+b4). h4 is trending (viewed yesterday); s4 was the hit of 200 days ago."""
    events: list[Interaction] = []
    month_ago = NOW - 30 * DAY

    def visits(prefix: str, count: int, items: tuple[str, ...], ts: float) -> None:
        for n in range(count):
            events.extend(Interaction(f"{prefix}{n}", item, "view", ts + n) for item in items)

    visits("shoe", 20, ("s1", "s2"), month_ago)
    visits("shoe-more", 8, ("s1", "s2", "s3"), month_ago)
    visits("hat", 20, ("h1", "h2"), month_ago)
    visits("hat-more", 8, ("h1", "h2", "h3"), month_ago)
    visits("mixed", 6, ("s1", "h1"), month_ago)
    visits("bag", 10, ("b1", "b2", "b4"), month_ago)
    visits("trend", 15, ("h4",), NOW - DAY)
    visits("old-hit", 40, ("s4",), NOW - 200 * DAY)
    return events


@pytest.fixture(scope="module")
def model() -> Recommender:
    return train_recommender(shop_interactions(), CATALOG, now=NOW, seed=0, params=KNN_CONTENT)


def ids(results: list[tuple[str, float]]) -> list[str]:
    return [item for item, _ in results]


def test_history_brings_its_co_viewed_items_first(model):
    assert ids(model.recommend([("s1", NOW)], 1)) == ["s2"]
    assert ids(model.recommend([("h1", NOW)], 1)) == ["h2"]
    assert ids(model.similar_items("s1", 1)) == ["s2"]


def test_results_are_best_first_without_seen_or_duplicate_items(model):
    results = model.recommend([("s1", NOW), ("s2", NOW - 60)], 50)
    scores = [score for _, score in results]
    assert scores == sorted(scores, reverse=True)
    assert len(ids(results)) == len(set(ids(results)))
    assert {"s1", "s2"}.isdisjoint(ids(results))
    # Everything else but the out-of-stock bag: fewer than k, not an error.
    assert set(ids(results)) == {item.id for item in CATALOG} - {"s1", "s2", "b4"}


def test_same_seed_same_model_and_recommendations():
    first = train_recommender(shop_interactions(), CATALOG, now=NOW, seed=3, params=KNN_CONTENT)
    second = train_recommender(shop_interactions(), CATALOG, now=NOW, seed=3, params=KNN_CONTENT)
    assert first.metadata["weights"] == second.metadata["weights"]
    assert first.metadata["validation"] == second.metadata["validation"]
    for history in ([], [("s1", NOW)], [("h3", NOW), ("b1", NOW - DAY)]):
        assert first.recommend(history, 8) == second.recommend(history, 8)
    assert (first.neighbours != second.neighbours).nnz == 0


def test_a_pickled_model_recommends_the_same(model):
    copy = pickle.loads(pickle.dumps(model))
    assert copy.recommend([("s1", NOW)], 5, diversity=0.5) == model.recommend([("s1", NOW)], 5, diversity=0.5)
    assert copy.version == model.version and model.version.startswith("rec-")


def test_no_history_falls_back_to_trending(model):
    # h4: 15 views yesterday beat s4: 40 views 200 days ago, with a 7-day trending half-life.
    assert ids(model.recommend([], 1)) == ["h4"]


def test_all_time_popularity_when_trending_has_no_decay():
    params = RecommenderParams(components=(), trending_half_life_days=None)
    popular = train_recommender(shop_interactions(), CATALOG, now=NOW, params=params)
    assert ids(popular.recommend([], 2)) == ["s4", "s1"]  # 40 visitors, then 34


def test_preferences_choose_the_categories_of_a_cold_start(model):
    assert set(ids(model.recommend([], 3, preferences=["bags"]))) == {"b1", "b2", "b3"}
    mixed = ids(model.recommend([], 8, preferences=["bags", "unknown-category"]))
    assert {CATEGORY[item] for item in mixed[:3]} == {"bags"}
    assert mixed[3] == "h4"  # then trending overall


def test_unknown_items_in_history_are_ignored(model):
    assert model.recommend([("ghost", NOW)], 5) == model.recommend([], 5)
    assert model.recommend([("ghost", NOW), ("s1", NOW)], 5) == model.recommend([("s1", NOW)], 5)
    assert model.similar_items("ghost") == []


def test_business_filters(model):
    history = [("s1", NOW)]
    assert "s2" not in ids(model.recommend(history, 20, exclude={"s2"}))
    assert {CATEGORY[item] for item in ids(model.recommend(history, 20, category="hats"))} == {"hats"}
    assert "b4" not in ids(model.recommend([("b1", NOW)], 20))  # out of stock, though co-viewed
    assert model.recommend(history, 5, category="no-such-category") == []
    # Every candidate filtered out: an empty list, not an error.
    assert model.recommend(history, 5, category="bags", exclude={"b1", "b2", "b3"}) == []
    assert model.recommend(history, 0) == []


def test_down_voted_items_are_demoted_to_the_end(model):
    history = [("s1", NOW)]
    assert ids(model.recommend(history, 1)) == ["s2"]
    demoted = ids(model.recommend(history, 50, down_voted={"s2"}))
    assert demoted[-1] == "s2"
    assert "s2" not in ids(model.recommend(history, 5, down_voted={"s2"}))


def test_a_down_vote_also_lowers_the_down_voted_items_neighbours(model):
    history = [("s3", NOW)]
    plain = dict(model.recommend(history, 20))
    after = dict(model.recommend(history, 20, down_voted={"s1"}))
    assert after["s2"] < plain["s2"]


def test_down_votes_are_negative_signal_in_training():
    params = RecommenderParams(components=("knn",), shrinkages=(0.0,))
    events = shop_interactions()
    liked = train_recommender(events, CATALOG, now=NOW, params=params)
    downs = [Interaction(f"shoe{n}", "s2", "down", NOW - 29 * DAY) for n in range(20)]
    disliked = train_recommender(events + downs, CATALOG, now=NOW, params=params)
    assert dict(disliked.similar_items("s1")).get("s2", 0.0) < dict(liked.similar_items("s1"))["s2"]


def test_newer_history_weighs_more(model):
    fresh_hat = [("h1", NOW), ("s1", NOW - 60 * DAY)]
    fresh_shoe = [("s1", NOW), ("h1", NOW - 60 * DAY)]
    assert ids(model.recommend(fresh_hat, 1, now=NOW)) == ["h2"]
    assert ids(model.recommend(fresh_shoe, 1, now=NOW)) == ["s2"]


def test_mmr_diversifies_the_top_of_the_list(model):
    history = [("s1", NOW), ("s2", NOW)]
    plain = ids(model.recommend(history, 3))
    diverse = ids(model.recommend(history, 3, diversity=0.8))
    assert diverse[0] == plain[0]  # the most relevant item stays first
    assert len({CATEGORY[item] for item in diverse}) > len({CATEGORY[item] for item in plain})
    assert model.recommend(history, 3, diversity=0.0) == model.recommend(history, 3)


def test_interactions_from_stored_events():
    when = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        ("v", "page_view", "3", when, {"page_type": "product"}),
        ("v", "page_view", "", when, {}),  # a page that is not a product
        ("v", "add_to_cart", "3", 10.0, {"quantity": 1}),
        ("v", "purchase", "", 20.0, {"items": [3, {"product_id": 4}, "5"]}),
        ("v", "recommendation_feedback", "7", 30.0, {"vote": "down"}),
        ("v", "recommendation_feedback", "8", 31.0, {"vote": "up"}),
        ("v", "search", "", 40.0, {"query": "hat"}),
    ]
    assert interactions_from_events(rows) == [
        Interaction("v", "3", "view", when.timestamp()),
        Interaction("v", "3", "cart", 10.0),
        Interaction("v", "3", "purchase", 20.0),
        Interaction("v", "4", "purchase", 20.0),
        Interaction("v", "5", "purchase", 20.0),
        Interaction("v", "7", "down", 30.0),
        Interaction("v", "8", "up", 31.0),
    ]


def test_interaction_weights_and_time_decay():
    matrix = interaction_matrix(
        np.array([0, 1, 2]), np.array([0, 0, 0]), ["purchase", "view", "down"], np.array([NOW, NOW - 10 * DAY, NOW]),
        (3, 1), now=NOW, half_life_days=10.0,
    ).toarray()
    # log1p compresses the decayed weight: purchase 5, a view one half-life old 0.5, down -4.
    assert matrix[:, 0] == pytest.approx([np.log1p(5.0), np.log1p(0.5), -np.log1p(4.0)], rel=1e-6)


def test_cosine_with_shrinkage_by_hand():
    visitors_by_items = sp.csr_matrix(np.array([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=np.float32))
    # dot = 2, |a| = |b| = sqrt(3): 2 / (3 + 1) with shrinkage 1.
    assert cosine_neighbours(visitors_by_items, 5, 1.0).toarray() == pytest.approx(np.array([[0, 0.5], [0.5, 0]]))


def test_ease_matches_the_closed_form():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 6)) < 0.4).astype(np.float64)
    gram = x.T @ x
    precision = np.linalg.inv(gram + 5.0 * np.eye(6))
    expected = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(expected, 0.0)
    assert ease_weights(gram.astype(np.float32), 5.0) == pytest.approx(expected, abs=1e-4)


def test_blend_grid_covers_the_simplex():
    grid = blend_grid(["knn", "content", "ease"], 0.25)
    assert len(grid) == 15
    assert all(sum(weights.values()) == pytest.approx(1.0) for weights in grid)
    assert {"knn": 1.0, "content": 0.0, "ease": 0.0} in grid


@pytest.mark.django_db
def test_demo_catalog_trains_a_recommender_of_product_ids():
    from tailored.ml.synthetic import generate_histories

    catalog = demo_catalog()
    assert catalog and all(item.id.isdigit() and item.category for item in catalog)
    histories = generate_histories(catalog, visitors=150, seed=1, now=NOW)
    rows = ((h.visitor_id, e.type, e.item, e.ts, e.attrs) for h in histories for e in h.events)
    model = train_recommender(interactions_from_events(rows), catalog, now=NOW, seed=1)
    product_ids = {item.id for item in catalog}
    results = model.recommend([(catalog[0].id, NOW)], 5, preferences=[catalog[-1].category])
    assert len(results) == 5 and {item for item, _ in results} <= product_ids - {catalog[0].id}


def test_a_model_fitted_on_nothing_still_answers():
    empty = train_recommender([], [], now=NOW)
    assert empty.recommend([("s1", NOW)], 5) == [] and empty.similar_items("s1") == []
    no_events = train_recommender([], CATALOG[:2], now=NOW)
    assert ids(no_events.recommend([("s1", NOW)], 5)) == ["s2"]  # the catalog, unpersonalised
