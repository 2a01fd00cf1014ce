"""Propensity: labels from what happens after each cutoff, calibrated gradient boosting,
cross-validated metrics that mean what they say, determinism for a seed, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.ml.catalog import CatalogItem
from tailored.ml.features import feature_names
from tailored.ml.personas import NotEnoughData
from tailored.ml.propensity import evaluate, fit_propensity, format_metrics
from tailored.ml.synthetic import generate_histories
from tailored.ml.training import History, labelled_rows

DAY = 86400.0
NOW = 1_800_000_000.0
CATALOG = [
    CatalogItem(str(pk), f"Item {pk}", category, tags=(f"t{pk % 4}",), price=float(5 + 7 * (pk % 9)))
    for pk, category in enumerate(["books", "outdoors", "beauty", "fashion"] * 6, start=1)
]


@pytest.fixture(scope="module")
def labelled():
    histories = generate_histories(CATALOG, visitors=400, days=28, seed=9, now=NOW)
    history = History({h.visitor_id: h.events for h in histories}, (), NOW - 28 * DAY, NOW)
    return history, labelled_rows(history, NOW)


def test_labels_come_from_the_week_after_each_cutoff(labelled):
    history, (rows, labels, groups, cutoffs) = labelled
    assert cutoffs == [NOW - 7 * DAY, NOW - 14 * DAY, NOW - 21 * DAY]
    assert len(rows) == len(groups) == len(labels["churn_risk"]) == len(labels["purchase_intent"])
    # The first cutoff's rows come first, one per visitor with events before it.
    first = [v for v, events in history.events.items() if events[0].ts <= cutoffs[0]]
    visitor = groups[0]
    after = [e for e in history.events[visitor] if cutoffs[0] < e.ts <= cutoffs[0] + 7 * DAY]
    assert sorted(groups[: len(first)]) == sorted(first)
    assert labels["churn_risk"][0] == int(not after)
    assert labels["purchase_intent"][0] == int(any(e.type == "purchase" for e in after))
    assert 0.1 < np.mean(labels["churn_risk"]) < 0.9 and 0.05 < np.mean(labels["purchase_intent"]) < 0.9


@pytest.fixture(scope="module")
def churn(labelled):
    _, (rows, labels, groups, _) = labelled
    return fit_propensity("churn_risk", rows, labels["churn_risk"], groups, feature_names, seed=1)


def test_churn_is_learnable_and_its_scores_are_probabilities(labelled, churn):
    _, (rows, _, _, _) = labelled
    metrics = churn.metrics
    assert metrics["roc_auc"] > 0.7 and metrics["lift_top_decile"] > 1.3
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    scores = churn.score(rows[:50])
    assert all(0.0 <= s <= 1.0 for s in scores) and len(set(scores)) > 5
    assert "ROC-AUC" in format_metrics("churn_risk", metrics) and "lift" in format_metrics("churn_risk", metrics)


def test_the_same_seed_gives_the_same_model(labelled):
    _, (rows, labels, groups, _) = labelled
    part = slice(0, 240)
    fits = [fit_propensity("purchase_intent", rows[part], labels["purchase_intent"][part], groups[part], feature_names, seed=4) for _ in range(2)]
    assert fits[0].metrics == fits[1].metrics and fits[0].score(rows[:20]) == fits[1].score(rows[:20])


def test_metrics_on_a_worked_example():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0] * 2)
    predicted = np.array([0.9, 0.8, 0.6, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1] * 2)
    metrics = evaluate(y, predicted)
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == 1.0
    assert metrics["lift_top_decile"] == pytest.approx(1.0 / 0.2)  # top 2 rows: both 0.9s are positive
    assert metrics["roc_auc"] == pytest.approx(60 / 64)  # 0.6s rank below the two 0.8 negatives


def test_too_few_positives_is_a_clear_error():
    rows = [[float(i)] * len(feature_names) for i in range(100)]
    with pytest.raises(NotEnoughData, match="at least 20 visitors on each side"):
        fit_propensity("purchase_intent", rows, [1] * 5 + [0] * 95, [str(i) for i in range(100)], feature_names)
