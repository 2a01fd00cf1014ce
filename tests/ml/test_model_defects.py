"""Issue 22, item 2: one test per defect the evaluation on unseen data found."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from tailored.ml.catalog import CatalogItem
from tailored.ml.datasets import validation_split
from tailored.ml.ease import ease_weights
from tailored.ml.recommender import (
    Interaction,
    RecommenderParams,
    encode,
    publish_problem,
    train_recommender,
    training_clock,
)
from tailored.ml.similarity import cosine_neighbours, top_k_per_target

DAY = 86400.0
NOW = 1_700_000_000.0


def groups(ts: float = NOW, visitors: int = 30, step: float = 1.0) -> list[Interaction]:
    """Three taste groups of four items; every visitor sees three of their group's items."""
    events = []
    for v in range(visitors):
        group = v % 3
        for n in range(3):
            events.append(Interaction(f"v{v}", f"i{group * 4 + (v + n) % 4}", "view", ts + n * step))
    return events


CATALOG = [CatalogItem(f"i{n}", f"item {n}", f"g{n // 4}") for n in range(12)]


def test_ease_keeps_its_negative_weights():
    rng = np.random.default_rng(1)
    x = (rng.random((200, 30)) < 0.2).astype(np.float32)
    weights = ease_weights(x.T @ x, 10.0)
    kept = top_k_per_target(weights, 10, signed=True).toarray()
    assert (kept < 0).any()
    # Each kept entry is among its target column's 10 largest magnitudes.
    for target in range(30):
        column = np.abs(weights[:, target])
        assert np.count_nonzero(kept[:, target]) == 10
        assert np.abs(kept[:, target]).min(where=kept[:, target] != 0, initial=np.inf) >= np.sort(column)[-10] - 1e-6


def test_a_fitted_ease_model_serves_negative_weights():
    rng = np.random.default_rng(2)
    events = [Interaction(f"v{v}", f"i{n}", "view", NOW) for v in range(80) for n in range(12) if rng.random() < 0.3]
    model = train_recommender(events, CATALOG, now=NOW, params=RecommenderParams(components=("ease",), ease_lambdas=(1.0,)))
    assert model.neighbours.nnz and (model.neighbours.data < 0).any()


def test_item_knn_keeps_each_target_items_top_neighbours():
    # Item 0 is every item's strongest neighbour (seen with all of them); per source row, k=1
    # would leave the other items with no incoming weight. Per target column, each keeps one.
    rows = [[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1], [1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]]
    table = cosine_neighbours(sp.csr_matrix(np.array(rows, dtype=np.float32)), 1, 0.0).toarray()
    assert (np.count_nonzero(table, axis=0) == 1).all()  # one source per target column
    assert np.count_nonzero(table[:, 1:]) == 3 and table[0, 1:].all()


def test_data_without_timestamps_fits_a_useful_model():
    model = train_recommender(groups(ts=0.0, step=0.0), CATALOG, now=NOW, params=RecommenderParams(components=("knn",)))
    assert model.neighbours.nnz > 0 and publish_problem(model) is None
    assert model.history_half_life_days is None
    # A visitor of group 1 gets group 1's other items, not the catalog in index order.
    assert {item for item, _ in model.recommend([("i4", 0.0)], 3)} == {"i5", "i6", "i7"}


def test_equally_old_data_fits_the_same_model_whatever_its_age():
    params = RecommenderParams(components=("knn",))
    fresh = train_recommender(groups(ts=NOW - 100), CATALOG, now=NOW, params=params)
    old = train_recommender(groups(ts=NOW - 3000 * DAY), CATALOG, now=NOW, params=params)
    assert np.allclose(fresh.neighbours.toarray(), old.neighbours.toarray())
    assert np.array_equal(fresh.fallback_order, old.fallback_order)


def test_the_training_clock_is_the_newest_interaction_or_off():
    params = RecommenderParams()
    assert training_clock(np.array([5.0, 9.0]), params) == (9.0, params)
    for stamps in (np.zeros(3), np.full(3, NOW), np.empty(0)):
        clock, off = training_clock(stamps, params)
        assert clock is None and off.decay_half_life_days is None and off.trending_half_life_days is None


def test_an_empty_neighbour_table_or_a_loss_to_popularity_is_not_published():
    params = RecommenderParams(components=("knn",))
    good = train_recommender(groups(), CATALOG, now=NOW, params=params)
    assert publish_problem(good) is None
    empty = replace(good, neighbours=sp.csr_matrix(good.neighbours.shape, dtype=np.float32))
    assert "neighbour table is empty" in publish_problem(empty)
    worse = replace(good, metadata={**good.metadata, "validation": {"ndcg@10": 0.1, "popularity_ndcg@10": 0.2}})
    assert "below popularity" in publish_problem(worse)
    assert good.metadata["validation"]["popularity_ndcg@10"] < good.metadata["validation"]["ndcg@10"]


def test_validation_asks_each_visitors_latest_new_items_in_time_order():
    events = [Interaction(f"v{v}", f"i{(v + n) % 12}", "view", NOW + (5 - n) * 100) for v in range(20) for n in range(5)]
    encoded = encode(events, CATALOG)
    fit_mask, questions = validation_split(encoded, seed=3, max_visitors=100)
    asked = questions.newcomers().tolist()
    assert len(asked) == 10  # at most half: the other half is fitted
    for v in asked:
        own = np.flatnonzero(questions.visitors == v)
        # Five items: the two latest (at most half of them), oldest first, each after all before it.
        assert [encoded.item_ids[i] for i in questions.targets[own]] == [f"i{(v + 1) % 12}", f"i{v % 12}"]
        assert [sorted(encoded.item_ids[i] for i in encoded.items[questions.histories[q]]) for q in own] == [
            sorted(f"i{(v + n) % 12}" for n in (2, 3, 4)), sorted(f"i{(v + n) % 12}" for n in (1, 2, 3, 4)),
        ]
    # Validation visitors are visitors the fitted model never saw, as a published model's are.
    assert not fit_mask[np.isin(encoded.visitors, asked)].any() and fit_mask[~np.isin(encoded.visitors, asked)].all()


def test_validation_scores_the_capped_history_serving_scores():
    # Long histories whose old part points elsewhere: capped at 2 items the latest taste wins.
    events = []
    for v in range(40):
        own = (v % 2) * 6
        old = [f"i{(own + 6 + n) % 12}" for n in range(4)]
        new = [f"i{own + n}" for n in range(3)]
        events += [Interaction(f"v{v}", item, "view", NOW - 1000 + n) for n, item in enumerate(old)]
        events += [Interaction(f"v{v}", item, "view", NOW + n) for n, item in enumerate(new)]
    capped = train_recommender(events, CATALOG, now=NOW, params=RecommenderParams(components=("knn",), max_history=2))
    assert capped.max_history == 2
    long = [(f"i{6 + n}", NOW - 1000) for n in range(4)]
    got = capped.recommend([("i0", NOW + 1), ("i1", NOW), *long], 3)
    assert not {item for item, _ in got} & {"i0", "i1", "i6", "i7", "i8", "i9"}


def test_interactions_outside_the_catalog_are_counted_in_a_warning(caplog):
    events = [*groups(), Interaction("v1", "ghost", "view", NOW), Interaction("v2", "ghost-2", "view", NOW)]
    with caplog.at_level(logging.WARNING, logger="tailored.ml.recommender"):
        encoded = encode(events, CATALOG)
    assert len(encoded.items) == len(events) - 2
    assert "2 of 92 interactions name 2 items outside the catalog of 12 items" in caplog.text


@pytest.mark.django_db
def test_training_keeps_the_last_good_recommender_when_the_new_one_is_refused(settings, tmp_path, monkeypatch):
    from tailored.ml import recommender as recommender_module
    from tailored.ml import registry, training

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "MODEL_DIR": str(tmp_path), "MODEL_RELOAD_SECONDS": 0}
    good = train_recommender(groups(), CATALOG, now=NOW, params=RecommenderParams(components=("knn",)))
    version = registry.publish(training.RECOMMENDER, good, {})
    empty = replace(good, neighbours=sp.csr_matrix(good.neighbours.shape, dtype=np.float32))
    monkeypatch.setattr(recommender_module, "train_recommender", lambda *args, **kwargs: empty)
    history = training.History({}, [("v", "page_view", "i1", NOW, {})], NOW - DAY, NOW)
    report, said = training.TrainingReport(), []
    training._train_recommender(history, NOW, 0, said.append, report)
    assert report.skipped == ["recommender"] and "NOT published" in said[-1]
    assert registry.load(training.RECOMMENDER).version == version


def test_every_item_of_a_long_history_is_excluded_not_only_the_scored_ones():
    catalog = [CatalogItem(f"i{n}", f"item {n}", "") for n in range(300)]
    rng = np.random.default_rng(4)
    events = [Interaction(f"v{v}", f"i{n}", "view", NOW - n) for v in range(60) for n in rng.choice(300, 40, replace=False)]
    model = train_recommender(events, catalog, now=NOW, params=RecommenderParams(components=("knn",), max_history=10))
    history = [(f"i{n}", NOW - n) for n in range(250)]
    got = [item for item, _ in model.recommend(history, 40)]
    assert len(got) == 40 and not set(got) & {item for item, _ in history}
    assert model.recommend(history, 5, max_history=5) != [] and len(model.recommend(history[:3], 5, max_history=1)) == 5


def test_scoring_reads_only_the_newest_distinct_items_of_a_long_history():
    from tailored.ml.recommender import history_weights

    positions = np.array([5, 3, 5, 9, 1, 7])
    stamps = np.array([100.0, 90.0, 80.0, 70.0, 60.0, 50.0])
    items, weights = history_weights(positions, stamps, None, 3)
    assert items.tolist() == [3, 5, 9] and weights.tolist() == [1.0, 2.0, 1.0]  # 5 seen twice
    # Equal times (no timestamps): the first ones in the newest-first list win.
    items, _ = history_weights(np.array([8, 2, 6, 4]), np.zeros(4), None, 2)
    assert items.tolist() == [2, 8]


def test_training_reports_time_and_peak_memory_per_component_and_leaves_ease_out_of_large_catalogs():
    said: list[str] = []
    params = RecommenderParams(components=("knn", "ease"), ease_lambdas=(10.0,))
    model = train_recommender(groups(), CATALOG, now=NOW, params=params, progress=said.append)
    cost = model.metadata["fit_cost"]
    assert set(cost) == set(model.metadata["variants"].values())
    assert all(entry["seconds"] >= 0 and entry["peak_mb"] > 0 for entry in cost.values())
    assert any(line.strip().startswith("ease:10") and "peak" in line for line in said)
    small = train_recommender(groups(), CATALOG, now=NOW, params=replace(params, ease_item_limit=11), progress=said.append)
    assert "ease" not in small.metadata["params"]["components"]
    assert any("EASE left out: 12 items with interactions is above ease_item_limit 11" in line for line in said)


def test_validation_keeps_time_decay_when_tastes_moved_and_says_so():
    # A year ago s-items went with h-items; this month s1..s3 go together: decay must be kept.
    catalog = [CatalogItem(f"{p}{n}", f"{p} {n}", p) for p in "sh" for n in range(1, 5)]
    old = [Interaction(f"o{v}", item, "view", NOW - 400 * DAY + v) for v in range(60) for item in (f"s{v % 4 + 1}", f"h{v % 4 + 1}")]
    new = [Interaction(f"n{v}", f"s{(v + n) % 3 + 1}", "view", NOW - 3 * DAY + v * 60 + n) for v in range(40) for n in range(3)]
    said: list[str] = []
    train_recommender(old + new, catalog, now=NOW, params=RecommenderParams(components=("knn",)), progress=said.append)
    assert any(line.startswith("time decay kept: validation NDCG@10") for line in said)


def test_popularity_alone_also_chooses_its_trending_decay_on_validation():
    # Old hits are what visitors still go on to watch; last week's fad is not: trending must go.
    catalog = [CatalogItem(f"i{n}", f"item {n}", "") for n in range(6)]
    old = [Interaction(f"o{v}", f"i{v % 2}", "view", NOW - 900 * DAY + v) for v in range(200)]
    fad = [Interaction(f"f{v}", "i5", "view", NOW - DAY + v) for v in range(20)]
    later = [Interaction(f"n{v}", item, "view", NOW - 3 * DAY + v * 10 + n) for v in range(40) for n, item in enumerate(("i3", f"i{v % 2}"))]
    said: list[str] = []
    model = train_recommender(old + fad + later, catalog, now=NOW, params=RecommenderParams(components=()), progress=said.append)
    assert any(line.startswith("time decay off") for line in said)
    assert {item for item, _ in model.recommend([], 2)} == {"i0", "i1"}
