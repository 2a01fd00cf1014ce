"""Ranking metrics against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tailored.ml import metrics


def test_hit_rate_counts_a_hit_only_inside_the_cut_off():
    ranked = ["a", "b", "c"]
    assert metrics.hit_rate(ranked, {"c"}, 2) == 0.0
    assert metrics.hit_rate(ranked, {"c"}, 3) == 1.0
    assert metrics.hit_rate(ranked, set(), 3) == 0.0


def test_recall_is_the_share_of_relevant_items_found():
    assert metrics.recall(["a", "b", "c"], {"a", "d"}, 2) == 0.5
    assert metrics.recall(["a", "b", "c"], {"a", "c"}, 3) == 1.0
    assert metrics.recall(["a"], set(), 10) == 0.0


def test_ndcg_of_one_relevant_item_at_rank_two():
    # DCG = 1 / log2(2 + 1); the ideal list has it first: IDCG = 1.
    assert metrics.ndcg(["a", "b", "c"], {"b"}, 10) == pytest.approx(1 / math.log2(3))
    assert metrics.ndcg(["b", "a"], {"b"}, 10) == 1.0
    assert metrics.ndcg(["a", "b"], {"b"}, 1) == 0.0


def test_ndcg_of_two_relevant_items():
    # DCG = 1/log2(3) + 1/log2(4) = 0.63093 + 0.5; IDCG = 1 + 0.63093.
    expected = (0.6309297535714575 + 0.5) / (1 + 0.6309297535714575)
    assert metrics.ndcg(["x", "a", "b"], {"a", "b"}, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.69342, abs=1e-5)


def test_coverage_is_the_share_of_the_catalog_ever_shown():
    assert metrics.coverage([["a", "b"], ["b", "c"]], 10) == pytest.approx(0.3)
    assert metrics.coverage([], 10) == 0.0
    assert metrics.coverage([["a"]], 0) == 0.0


def test_novelty_is_mean_self_information_of_recommended_items():
    # p(a) = 2/8 -> 2 bits; p(b) = 8/8 -> 0 bits; mean 1 bit.
    assert metrics.novelty([["a", "b"]], {"a": 2, "b": 8}, 8) == pytest.approx(1.0)
    # An item nobody interacted with counts as one visitor: -log2(1/8) = 3 bits, not infinity.
    assert metrics.novelty([["z"]], {}, 8) == pytest.approx(3.0)
    assert metrics.novelty([], {}, 8) == 0.0


def test_bulk_hit_ndcg_ranks_each_held_item_in_its_row():
    scores = np.array([[0.9, 0.5, 0.1], [0.1, 0.2, 0.3]])
    held = np.array([1, 0])  # row 0: second best; row 1: worst of three
    assert metrics.bulk_hit_ndcg(scores, held, 1) == (0.0, 0.0)
    hr, ndcg = metrics.bulk_hit_ndcg(scores, held, 2)
    assert hr == 0.5
    assert ndcg == pytest.approx((1 / math.log2(3)) / 2)
    assert metrics.bulk_hit_ndcg(scores, held, 3)[0] == 1.0


def test_bulk_hit_ndcg_counts_a_tie_against_the_held_item():
    hr, _ = metrics.bulk_hit_ndcg(np.array([[0.5, 0.5]]), np.array([1]), 1)
    assert hr == 0.0
