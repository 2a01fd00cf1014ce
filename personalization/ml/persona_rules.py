""""Make this persona a segment" (issue 7, item 3): a shallow decision tree fitted to one persona
(one-vs-rest) on the training profiles' features, turned into a rule in the rule language.

Every feature is a rule operand (ml.features), so each split `feature <= t` is a condition the
rule compiler understands. The positive leaves' paths become `any` of `all`; per path, repeated
splits on one feature keep only the tightest bounds, and each threshold is moved to the roundest
number that puts every training profile on the same side (so "at most 2.5 purchases" reads "at
most 2"). Fidelity is measured by evaluating those final conditions, not the tree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from .features import condition
from .personas import PersonaModel

MAX_DEPTH = 3
Bound = tuple[str, str, float]  # (feature, "lte" | "gt", threshold)


@dataclass(frozen=True, slots=True)
class ProposedRule:
    slug: str
    rule: dict[str, Any] | None  # None: no region of the tree is mostly this persona
    paths: tuple[tuple[Bound, ...], ...]
    accuracy: float  # share of training profiles on which the rule and the clustering agree
    precision: float  # of the profiles the rule matches, the share in the persona
    recall: float  # of the persona's profiles, the share the rule matches


def propose_rule(model: PersonaModel, slug: str, max_depth: int = MAX_DEPTH, seed: int = 7) -> ProposedRule:
    """The rule that best describes persona `slug` with a tree of at most `max_depth` splits."""
    rows, members = np.asarray(model.rows, dtype=float), np.array([model.slug_of(c) == slug for c in model.clusters])
    if not len(rows) or not members.any():
        raise ValueError(f"persona {slug!r} has no training profiles in this model")
    columns = tuple(model.feature_names)
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=5, random_state=seed).fit(rows, members)
    paths = tuple(_simplify(path, rows, columns) for path in _positive_paths(tree, 0, (), columns))
    matched = _matches(paths, rows, columns)
    hits = int((matched & members).sum())
    return ProposedRule(
        slug=slug,
        rule=to_rule(paths),
        paths=paths,
        accuracy=float((matched == members).mean()),
        precision=hits / int(matched.sum()) if matched.any() else 0.0,
        recall=hits / int(members.sum()),
    )


def _positive_paths(tree: DecisionTreeClassifier, node: int, path: tuple[Bound, ...], columns: Sequence[str]) -> list[tuple[Bound, ...]]:
    """The paths to leaves that predict the persona; a split whose two sides both predict it
    entirely is dropped (it separates nothing)."""
    inner = tree.tree_
    left, right = inner.children_left[node], inner.children_right[node]
    if left == right:  # a leaf
        is_member = tree.classes_[int(np.argmax(inner.value[node][0]))]
        return [path] if is_member else []
    name, threshold = columns[inner.feature[node]], float(inner.threshold[node])
    below = _positive_paths(tree, left, (), columns)
    above = _positive_paths(tree, right, (), columns)
    if below == [()] and above == [()]:
        return [path]
    return [(*path, (name, "lte", threshold), *p) for p in below] + [(*path, (name, "gt", threshold), *p) for p in above]


def _simplify(path: tuple[Bound, ...], rows: np.ndarray, columns: Sequence[str]) -> tuple[Bound, ...]:
    """The tightest upper and lower bound per feature, each at a readable threshold."""
    upper: dict[str, float] = {}
    lower: dict[str, float] = {}
    for name, op, threshold in path:
        if op == "lte":
            upper[name] = min(threshold, upper.get(name, math.inf))
        else:
            lower[name] = max(threshold, lower.get(name, -math.inf))
    column = {name: i for i, name in enumerate(columns)}
    bounds = [(name, "gt", readable(t, rows[:, column[name]])) for name, t in lower.items()]
    bounds += [(name, "lte", readable(t, rows[:, column[name]])) for name, t in upper.items()]
    return tuple(sorted(bounds, key=lambda b: (column[b[0]], b[1])))


def readable(threshold: float, values: np.ndarray) -> float:
    """The roundest number r with the same split of `values` as `threshold` (x <= r iff x <= t)."""
    below, above = values[values <= threshold], values[values > threshold]
    low = float(below.max()) if len(below) else threshold
    high = float(above.min()) if len(above) else math.inf
    for step in (1000, 500, 100, 50, 10, 5, 1, 0.5, 0.1, 0.01):
        candidate = math.ceil(low / step - 1e-9) * step
        if low <= candidate < high:
            return int(candidate) if float(candidate).is_integer() else round(candidate, 2)
    return round(threshold, 3)


def _matches(paths: Sequence[Sequence[Bound]], rows: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    column = {name: i for i, name in enumerate(columns)}
    matched = np.zeros(len(rows), dtype=bool)
    for path in paths:
        holds = np.ones(len(rows), dtype=bool)
        for name, op, value in path:
            x = rows[:, column[name]]
            holds &= (x <= value) if op == "lte" else (x > value)
        matched |= holds
    return matched


def to_rule(paths: Sequence[Sequence[Bound]]) -> dict[str, Any] | None:
    """The rule-language JSON of the paths (`any` of `all`, flattened where there is one)."""
    if not paths:
        return None
    if any(not path for path in paths):  # the whole population: the tree found no split
        return {"field": "profile.page_views", "op": "gte", "value": 0}
    groups = [[condition(name, op, value) for name, op, value in path] for path in paths]
    alternatives = [group[0] if len(group) == 1 else {"all": group} for group in groups]
    return alternatives[0] if len(alternatives) == 1 else {"any": alternatives}
