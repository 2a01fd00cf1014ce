"""Implicit ALS and RP3beta (issue 22, item 3), checked against their formulas on small data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tailored.ml.catalog import CatalogItem
from tailored.ml.factors import _cg_half_step, als_factors, als_neighbours, rp3beta_neighbours
from tailored.ml.recommender import Interaction, RecommenderParams, train_recommender

RNG = np.random.default_rng(7)
X = sp.csr_matrix((RNG.random((30, 8)) < 0.35).astype(np.float32) * RNG.integers(1, 4, size=(30, 8)).astype(np.float32))


def test_conjugate_gradient_steps_reach_the_exact_weighted_least_squares_solution():
    fixed = RNG.standard_normal((8, 3)).astype(np.float32)
    solve = np.zeros((30, 3), dtype=np.float32)
    for _ in range(6):  # warm-started, as ALS calls it every iteration
        solve = _cg_half_step(X, solve, fixed, reg=0.5, alpha=2.0)
    dense = X.toarray()
    for user in range(30):
        confidence = 1.0 + 2.0 * dense[user]
        preference = (dense[user] > 0).astype(np.float64)
        a = fixed.T @ (confidence[:, None] * fixed) + 0.5 * np.eye(3)
        exact = np.linalg.solve(a, fixed.T @ (confidence * preference))
        assert solve[user] == pytest.approx(exact, abs=2e-3)


def test_the_als_table_is_the_folding_in_projection():
    factors = als_factors(X, 4, 1.0, 5.0, iterations=4)
    table = als_neighbours(factors, 1.0, 8).toarray()
    expected = factors @ np.linalg.inv(factors.T @ factors + np.eye(4)) @ factors.T
    np.fill_diagonal(expected, 0.0)
    assert table == pytest.approx(expected, abs=1e-4)


def test_rp3beta_matches_its_formula():
    binary = (X.toarray() > 0).astype(np.float64)
    p_ui = binary / np.maximum(binary.sum(axis=1, keepdims=True), 1e-12)
    p_iu = binary.T / np.maximum(binary.T.sum(axis=1, keepdims=True), 1e-12)
    expected = (p_iu**0.8) @ (p_ui**0.8) / np.maximum(binary.sum(axis=0), 1.0)[None, :] ** 0.4
    np.fill_diagonal(expected, 0.0)
    assert rp3beta_neighbours(X, 0.8, 0.4, 8).toarray() == pytest.approx(expected, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("component", ["als", "rp3"])
def test_each_recommends_within_a_taste_group(component):
    catalog = [CatalogItem(f"i{n}", f"item {n}", "") for n in range(12)]
    events = [Interaction(f"v{v}", f"i{(v % 3) * 4 + (v + n) % 4}", "view", 1000.0 + n) for v in range(90) for n in range(3)]
    params = RecommenderParams(components=(component,), als_settings=((3, 1.0, 5.0),), rp3_settings=((1.0, 0.3),))
    model = train_recommender(events, catalog, now=2000.0, params=params)
    assert {item for item, _ in model.recommend([("i4", 1.0), ("i5", 1.0)], 2)} == {"i6", "i7"}
    assert model.metadata["variants"] == {component: "als:3:1:5" if component == "als" else "rp3:1:0.3"}
