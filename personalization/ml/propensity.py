"""Propensity models (issue 7, item 4): churn risk (no return within 7 days) and purchase intent
(a purchase within 7 days), as calibrated gradient-boosting classifiers over profile features.

Metrics are out-of-fold: every visitor is scored by a model that never saw them (folds group a
visitor's rows together, since one visitor can appear at several training cutoffs). Probabilities
are calibrated (CalibratedClassifierCV) so `score.churn_risk >= 0.7` in a rule means roughly
"7 in 10 such visitors do not come back".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from .personas import NotEnoughData, one_thread

TARGETS = ("churn_risk", "purchase_intent")

MIN_PER_CLASS = 20
FOLDS = 5


@dataclass
class PropensityModel:
    """What the registry stores for one target."""

    name: str
    model: CalibratedClassifierCV
    feature_names: tuple[str, ...]
    metrics: dict[str, float]

    def score(self, rows: Sequence[Sequence[float]]) -> list[float]:
        if not len(rows):
            return []
        with one_thread():
            return [float(p) for p in self.model.predict_proba(np.asarray(rows, dtype=float))[:, 1]]


def _classifier(seed: int) -> CalibratedClassifierCV:
    # Shallow, regularized boosting: a few thousand rows and a dozen features overfit easily.
    boosted = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.08, max_depth=3, min_samples_leaf=20, l2_regularization=1.0, early_stopping=False, random_state=seed
    )
    return CalibratedClassifierCV(boosted, method="sigmoid", cv=3)


def fit_propensity(name: str, rows: Sequence[Sequence[float]], labels: Sequence[int], groups: Sequence[str],
                   feature_names: Sequence[str], seed: int = 7) -> PropensityModel:
    """Cross-validate (grouped by visitor), then fit on everything; raises NotEnoughData."""
    with one_thread():
        return _fit(name, rows, labels, groups, feature_names, seed)


def _fit(name: str, rows: Sequence[Sequence[float]], labels: Sequence[int], groups: Sequence[str],
         feature_names: Sequence[str], seed: int) -> PropensityModel:
    x, y = np.asarray(rows, dtype=float), np.asarray(labels, dtype=int)
    positives = int(y.sum())
    if min(positives, len(y) - positives) < MIN_PER_CLASS:
        raise NotEnoughData(
            f"{name} needs at least {MIN_PER_CLASS} visitors on each side of its label; got {positives} positive and {len(y) - positives} negative"
        )
    folds = StratifiedGroupKFold(n_splits=min(FOLDS, len(set(groups))), shuffle=True, random_state=seed)
    predicted = np.zeros(len(y))
    for fit_rows, held_rows in folds.split(x, y, groups):
        if len(set(y[fit_rows])) < 2:
            raise NotEnoughData(f"{name}: a cross-validation fold has only one class; more visitors are needed")
        predicted[held_rows] = _classifier(seed).fit(x[fit_rows], y[fit_rows]).predict_proba(x[held_rows])[:, 1]
    model = _classifier(seed).fit(x, y)
    return PropensityModel(name, model, tuple(feature_names), evaluate(y, predicted))


def evaluate(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """ROC-AUC, precision and recall at 0.5, lift in the top decile, Brier score, base rate."""
    chosen = predicted >= 0.5
    top = np.argsort(-predicted, kind="stable")[: max(1, len(y) // 10)]
    base = float(y.mean())
    return {
        "rows": float(len(y)),
        "base_rate": base,
        "roc_auc": float(roc_auc_score(y, predicted)),
        "precision": float(precision_score(y, chosen, zero_division=0)),
        "recall": float(recall_score(y, chosen, zero_division=0)),
        "lift_top_decile": float(y[top].mean() / base) if base else 0.0,
        "brier": float(brier_score_loss(y, predicted)),
    }


def format_metrics(name: str, metrics: dict[str, Any]) -> str:
    return (
        f"{name}: ROC-AUC {metrics['roc_auc']:.3f}, precision {metrics['precision']:.3f} / recall {metrics['recall']:.3f} at 0.5, "
        f"lift {metrics['lift_top_decile']:.2f}x in the top decile (base rate {metrics['base_rate']:.1%}, {int(metrics['rows'])} rows)"
    )
