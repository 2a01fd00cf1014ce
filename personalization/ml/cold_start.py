"""Short histories (issue 22, item 5): a visitor with one to three known items, or with none but
the onboarding survey's categories, is scored by a blend of four signals instead of the
neighbour table alone:

- collaborative: the served neighbour table's sum over the history (what a long history gets);
- content: the TF-IDF cosine table's sum over the history (tailored.ml.content);
- category: the share of the history in the candidate's category;
- trending: the decayed popularity every model breaks ties with.

Each history signal is scaled to a row maximum of 1, so the weights compare like with like. The
weights are chosen per history length on validation visitors cut to their last 1, 2 or 3 items
before the held-out one, scored by the same `blend_scores` a request runs. A data set without
item text or categories simply has those signals left out of the grid.

Categories the visitor chose in the onboarding survey are added on top (`PREFERENCE_WEIGHT`): they
are what the visitor said, so they count whatever validation made of the category signal, and a
visitor with no history gets their categories' trending items first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .metrics import bulk_hit_ndcg

SIGNALS = ("collaborative", "content", "category", "trending")
MAX_HISTORY = 3  # known distinct items up to which the blend serves (issue 22: "1-3 interactions")
# A chosen category counts this much next to the blend, whose signals each peak at 1. With no
# history it is the only personal signal, so preferred items lead and trending orders them.
PREFERENCE_WEIGHT = 0.5
NO_HISTORY_PREFERENCE_WEIGHT = 1.0
WEIGHT_STEP = 0.25
VALIDATION_VISITORS = 600  # per history length: the grid scores each of them 35 times
CHUNK = 128


@dataclass(frozen=True)
class ColdStart:
    """What the short-history path needs beside the recommender's own arrays."""

    content: sp.csr_matrix  # item x item, top-N sources per target (may be empty)
    weights: Mapping[int, Mapping[str, float]]  # history length -> signal -> weight
    validation: Mapping[str, float] = field(default_factory=dict)
    max_history: int = MAX_HISTORY

    def weights_for(self, length: int) -> Mapping[str, float]:
        """The weights for `length` known items (0: preferences only; trending orders them)."""
        if length <= 0:
            return {"trending": 1.0}
        return self.weights.get(min(length, self.max_history), {"collaborative": 1.0})


@dataclass(frozen=True)
class Signals:
    """The fixed inputs of every blend: tables, each item's category code and trending score."""

    collaborative: sp.csr_matrix
    content: sp.csr_matrix
    category_codes: np.ndarray
    named_categories: np.ndarray  # per category code: False for "" (no category)
    trending: np.ndarray  # per item, in [0, 1]

    def available(self) -> tuple[str, ...]:
        """The signals this data can give (MSWeb has no categories: no category signal)."""
        present = {
            "collaborative": self.collaborative.nnz > 0,
            "content": self.content.nnz > 0,
            "category": bool(self.named_categories[self.category_codes].any()) if self.category_codes.size else False,
            "trending": bool(self.trending.any()),
        }
        return tuple(name for name in SIGNALS if present[name])


def signal_matrices(signals: Signals, history: sp.csr_matrix, wanted: Sequence[str]) -> dict[str, np.ndarray]:
    """Dense rows x items of each wanted signal for weighted history rows (negative weights: down
    votes), history signals scaled to a row maximum of 1."""
    found: dict[str, np.ndarray] = {}
    for name, table in (("collaborative", signals.collaborative), ("content", signals.content)):
        if name in wanted:
            found[name] = _row_scaled((history @ table).toarray().astype(np.float32))
    if "category" in wanted:
        found["category"] = category_affinity(signals, (history > 0).astype(np.float32))
    if "trending" in wanted:
        found["trending"] = np.broadcast_to(signals.trending.astype(np.float32), (history.shape[0], signals.trending.size))
    return found


def category_affinity(signals: Signals, present: sp.csr_matrix) -> np.ndarray:
    """Per row and item: the share of the row's (named-category) items in that item's category.
    Counted with one scatter over the history's entries: a request pays for its 1-3 items, not
    for the catalog."""
    present = sp.csr_matrix(present)
    rows = np.repeat(np.arange(present.shape[0]), np.diff(present.indptr))
    codes = signals.category_codes[present.indices]
    counts = np.zeros((present.shape[0], signals.named_categories.size), dtype=np.float32)
    np.add.at(counts, (rows, codes), 1.0)
    counts *= signals.named_categories[None, :]
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    return shares[:, signals.category_codes]


def blend_scores(matrices: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """The weighted sum of the signal matrices (absent signals count 0)."""
    total: np.ndarray | None = None
    for name, weight in weights.items():
        if weight > 0 and name in matrices:
            part = matrices[name] * np.float32(weight)
            total = part if total is None else total + part
    shape = next(iter(matrices.values())).shape if matrices else (0, 0)
    return np.zeros(shape, dtype=np.float32) if total is None else np.asarray(total)


def preference_rows(signals: Signals, preferred_codes: Sequence[int]) -> np.ndarray:
    """1 for every item in a chosen (named) category, else 0."""
    codes = [code for code in preferred_codes if 0 <= code < signals.named_categories.size and signals.named_categories[code]]
    return np.isin(signals.category_codes, codes).astype(np.float32)


def _row_scaled(block: np.ndarray) -> np.ndarray:
    top = block.max(axis=1, keepdims=True) if block.size else np.ones((block.shape[0], 1), dtype=np.float32)
    return np.divide(block, top, out=np.zeros_like(block), where=top > 1e-9)


def weight_grid(names: Sequence[str], step: float = WEIGHT_STEP) -> list[dict[str, float]]:
    """Every weighting of `names` on a grid of `step` that sums to one, the first name's largest
    shares first (so ties go to the collaborative signal, then content...)."""
    units = max(1, round(1 / step))

    def compositions(count: int, left: int) -> list[list[int]]:
        if count == 1:
            return [[left]]
        return [[share, *rest] for share in range(left, -1, -1) for rest in compositions(count - 1, left - share)]

    if not names:
        return []
    return [{name: part / units for name, part in zip(names, parts, strict=True)} for parts in compositions(len(names), units)]


@dataclass(frozen=True)
class ShortHistories:
    """Validation rows for one history length: weighted histories, everything the visitors have
    (never ranked), and the held-out item."""

    history: sp.csr_matrix
    seen: sp.csr_matrix
    targets: np.ndarray


def tune_weights(
    signals: Signals, slices: Mapping[int, ShortHistories], say: Callable[[str], None] = lambda message: None,
) -> tuple[dict[int, dict[str, float]], dict[str, float]]:
    """Per history length, the grid weighting with the best validation NDCG@10 (ties: HR@10, then
    the first in grid order, collaborative first). Also returns popularity's, the collaborative
    table's and the blend's figures per length, for the model's metadata and the log."""
    names = signals.available()
    grid = weight_grid(names)
    chosen: dict[int, dict[str, float]] = {}
    figures: dict[str, float] = {}
    for length, rows in sorted(slices.items()):
        if rows.targets.size == 0 or not grid:
            continue
        results = _grid_results(signals, rows, names, grid)
        best = max(range(len(grid)), key=lambda i: (results[i][1], results[i][0]))
        chosen[length] = {name: grid[best].get(name, 0.0) for name in names}
        baselines = {label: results[i] for label in ("trending", "collaborative") for i, weights in enumerate(grid) if weights.get(label) == 1.0}
        for label, (hr, ndcg) in {**baselines, "blend": results[best]}.items():
            figures[f"{length}:{label}_hr@10"], figures[f"{length}:{label}_ndcg@10"] = round(hr, 4), round(ndcg, 4)
        weights_text = ", ".join(f"{name} {weight:.2f}" for name, weight in chosen[length].items() if weight)
        say(f"  short history {length}: {rows.targets.size} visitors, blend [{weights_text}] HR@10 {results[best][0]:.4f}  NDCG@10 {results[best][1]:.4f}"
            + "".join(f"; {label} {hr:.4f} / {ndcg:.4f}" for label, (hr, ndcg) in baselines.items()))
    return chosen, figures


def _grid_results(signals: Signals, rows: ShortHistories, names: Sequence[str], grid: Sequence[Mapping[str, float]]) -> list[tuple[float, float]]:
    hits = np.zeros(len(grid))
    gains = np.zeros(len(grid))
    for start in range(0, rows.targets.size, CHUNK):
        matrices = signal_matrices(signals, rows.history[start : start + CHUNK], names)
        seen = rows.seen[start : start + CHUNK].nonzero()
        targets = rows.targets[start : start + CHUNK]
        for i, weights in enumerate(grid):
            scores = blend_scores(matrices, weights).astype(np.float64)
            # Ties as at serving: trending orders equal scores.
            scores += 1e-6 * signals.trending[None, :]
            scores[seen] = -np.inf
            hr, ndcg = bulk_hit_ndcg(scores, targets, 10)
            hits[i] += hr * targets.size
            gains[i] += ndcg * targets.size
    count = max(rows.targets.size, 1)
    return [(hits[i] / count, gains[i] / count) for i in range(len(grid))]
