"""Short histories and item types (issue 22 items 5 and 6), on a small shop built so the right
answers are known: what a one-item visitor, a visitor with survey answers only, and a request for
articles get."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest

from tailored.ml import cold_start
from tailored.ml.catalog import CatalogItem
from tailored.ml.datasets import ColdStartData, EvalCase
from tailored.ml.evaluation import COLD_START_MODELS, evaluate_cold_start, format_cold_start
from tailored.ml.recommender import Interaction, RecommenderParams, train_recommender

NOW = 1_700_000_000.0
DAY = 86400.0
CATALOG = [
    *(CatalogItem(f"s{i}", f"running shoe model {i}", "shoes", tags=("shoe", "running")) for i in range(1, 6)),
    *(CatalogItem(f"h{i}", f"wool hat style {i}", "hats", tags=("hat", "wool")) for i in range(1, 6)),
    *(CatalogItem(f"a{i}", f"how to choose a running shoe, part {i}", "shoes", item_type="article") for i in range(1, 4)),
]
ARTICLES = {item.id for item in CATALOG if item.item_type == "article"}


def shop() -> list[Interaction]:
    """Hats trend (many visitors, recently); shoe fans view two to four shoes; readers of one
    article read the next; nothing links shoes to hats."""
    events: list[Interaction] = []
    for n in range(40):
        events += [Interaction(f"hat{n}", f"h{1 + n % 5}", "view", NOW - DAY + n), Interaction(f"hat{n}", f"h{1 + (n + 1) % 5}", "view", NOW - DAY + n + 1)]
    for n in range(20):
        items = [f"s{1 + (n + j) % 5}" for j in range(2 + n % 3)]
        events += [Interaction(f"shoe{n}", item, "view", NOW - 5 * DAY + n * 10 + j) for j, item in enumerate(items)]
    for n in range(10):
        events += [Interaction(f"reader{n}", f"a{1 + n % 3}", "view", NOW - 2 * DAY + n), Interaction(f"reader{n}", f"a{1 + (n + 1) % 3}", "view", NOW - 2 * DAY + n + 1)]
    return events


@pytest.fixture(scope="module")
def model():
    return train_recommender(shop(), CATALOG, now=NOW, seed=0, params=RecommenderParams(components=("knn", "content")))


def test_a_model_fitted_with_validation_carries_its_short_history_blend(model):
    assert model.cold_start is not None
    assert set(model.cold_start.weights) <= {1, 2, 3}
    assert "short_history" in model.metadata


def test_a_one_shoe_visitor_gets_shoes_not_the_trending_hats(model):
    ranked = [item for item, _ in model.recommend([("s1", NOW)], 3, item_type="product")]
    assert ranked and all(item.startswith("s") for item in ranked)
    assert "s1" not in ranked


def test_survey_categories_alone_give_that_category_first_not_plain_trending(model):
    trending = [item for item, _ in model.recommend([], 3, item_type="product")]
    preferred = [item for item, _ in model.recommend([], 3, preferences=["shoes"], item_type="product")]
    assert all(item.startswith("h") for item in trending)  # hats trend
    assert all(CATALOG_BY_ID[item].category == "shoes" for item in preferred)


def test_survey_categories_still_count_beside_a_short_history(model):
    with_survey = [item for item, _ in model.recommend([("h1", NOW)], 5, preferences=["shoes"], item_type="product")]
    assert any(CATALOG_BY_ID[item].category == "shoes" for item in with_survey)


def test_an_item_type_keeps_only_that_type(model):
    articles = [item for item, _ in model.recommend([("s1", NOW)], 5, item_type="article")]
    products = [item for item, _ in model.recommend([("a1", NOW)], 5, item_type="product")]
    assert articles and set(articles) <= ARTICLES
    assert products and not set(products) & ARTICLES
    assert model.recommend([("s1", NOW)], 5, item_type="podcast") == []


def test_the_article_being_read_seeds_its_neighbours_and_is_never_offered(model):
    ranked = [item for item, _ in model.recommend([("a1", NOW)], 2, item_type="article")]
    assert "a1" not in ranked and set(ranked) == {"a2", "a3"}


def test_a_model_pickled_before_short_histories_and_item_types_still_serves(model):
    old = replace(model, cold_start=None, item_type_codes=None)
    state = pickle.loads(pickle.dumps(old))
    del state.__dict__["cold_start"], state.__dict__["item_type_codes"]  # as an older pickle has them
    assert state.recommend([("s1", NOW)], 3, item_type="product")
    assert state.recommend([("s1", NOW)], 3, item_type="article") == []


def test_the_weight_grid_covers_every_single_signal_and_sums_to_one():
    grid = cold_start.weight_grid(["collaborative", "content", "trending"])
    assert all(abs(sum(weights.values()) - 1.0) < 1e-9 for weights in grid)
    for name in ("collaborative", "content", "trending"):
        assert {**dict.fromkeys(("collaborative", "content", "trending"), 0.0), name: 1.0} in grid


def test_the_cold_start_evaluation_reports_every_model_at_one_two_and_three_items():
    cases = {
        n: tuple(EvalCase(f"new{v}", tuple((f"s{1 + (v + j) % 5}", NOW) for j in range(n)), frozenset({f"s{1 + (v + n) % 5}"}), NOW) for v in range(5))
        for n in (1, 2, 3)
    }
    data = ColdStartData("tiny", "test", tuple(CATALOG), tuple(shop()), cases, NOW)
    results = evaluate_cold_start(data, params=RecommenderParams(tuning_seconds=5))
    assert [r.model for r in results] == list(COLD_START_MODELS)
    assert all(set(r.figures) == {1, 2, 3} for r in results)
    assert "hybrid*" in format_cold_start(data, results)


CATALOG_BY_ID = {item.id: item for item in CATALOG}
