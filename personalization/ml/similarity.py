"""Item-item collaborative filtering on implicit feedback, on scipy.sparse.

The visitor x item matrix holds weighted, time-decayed interactions (a purchase says more than a
view; last month says more than last year; a thumbs-down subtracts). Item similarity is cosine
with shrinkage, so a pair seen together twice does not outrank a pair seen together a hundred
times. Only the top-N neighbours of each item are kept: online scoring is then a sparse sum over
the visitor's history (see recommender.Recommender.recommend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

DAY = 86400.0
# How much one event of each kind says about a visitor's taste; "down" is negative signal.
KIND_WEIGHTS: Mapping[str, float] = {"view": 1.0, "up": 2.0, "cart": 3.0, "purchase": 5.0, "down": -4.0}
# Rows of the item x item product computed at once: bounds memory to BLOCK x n_items floats.
BLOCK = 512
# Above this many items, item x item products stay sparse instead of dense blocks.
DENSE_MAX_ITEMS = 12_000


def decay(age_seconds: np.ndarray | float, half_life_days: float | None) -> np.ndarray | float:
    """Weight of an event `age_seconds` old: halves every `half_life_days` (None: no decay)."""
    if half_life_days is None:
        return np.ones_like(age_seconds, dtype=np.float64) if isinstance(age_seconds, np.ndarray) else 1.0
    age = np.maximum(age_seconds, 0.0)
    return np.power(0.5, age / (half_life_days * DAY))


def interaction_matrix(
    visitors: np.ndarray,
    items: np.ndarray,
    kinds: Sequence[str],
    ts: np.ndarray,
    shape: tuple[int, int],
    *,
    now: float,
    half_life_days: float | None,
    kind_weights: Mapping[str, float] = KIND_WEIGHTS,
) -> sp.csr_matrix:
    """Visitor x item float32 matrix: per cell the decayed sum of event weights, compressed with
    log1p so a visitor who viewed one item forty times does not dominate its similarities. A cell
    whose thumbs-down outweighs its positive events stays negative (it lowers co-occurrence)."""
    weights = np.fromiter((kind_weights.get(kind, 0.0) for kind in kinds), dtype=np.float64, count=len(kinds))
    weights = weights * decay(now - np.asarray(ts, dtype=np.float64), half_life_days)
    matrix = sp.csr_matrix((weights, (visitors, items)), shape=shape, dtype=np.float64)
    matrix.sum_duplicates()
    matrix.data = np.sign(matrix.data) * np.log1p(np.abs(matrix.data))
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)


def top_n_per_row(block: np.ndarray, n: int, row_offset: int = 0, *, signed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of the n largest positive entries of each row of a dense block; with
    `signed`, the n entries of largest magnitude whatever their sign (EASE's negative weights
    carry as much as its positive ones, issue 22)."""
    n = min(n, block.shape[1])
    if n <= 0 or block.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float32)
    if n < block.shape[1]:
        cols = np.argpartition(-(np.abs(block) if signed else block), n - 1, axis=1)[:, :n]
    else:
        cols = np.broadcast_to(np.arange(block.shape[1]), block.shape)
    values = np.take_along_axis(block, cols, axis=1)
    rows = np.broadcast_to(np.arange(block.shape[0])[:, None] + row_offset, cols.shape)
    keep = values != 0 if signed else values > 0
    return rows[keep], cols[keep], values[keep].astype(np.float32)


def cosine_neighbours(matrix: sp.csr_matrix, n_neighbours: int, shrinkage: float) -> sp.csr_matrix:
    """Item x item cosine similarity with shrinkage, s_ij = x_i.x_j / (|x_i||x_j| + shrink), keeping
    each target item's top-N sources (see top_k_per_target). Small catalogs go through dense blocks; large ones stay sparse (most pairs never co-occur)."""
    by_item = matrix.T.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(by_item.multiply(by_item).sum(axis=1)).ravel())
    n_items = by_item.shape[0]
    if n_items > DENSE_MAX_ITEMS:
        return _sparse_cosine(by_item, norms, n_neighbours, shrinkage)
    parts = []
    for start in range(0, n_items, BLOCK):
        stop = min(start + BLOCK, n_items)
        dots = (by_item[start:stop] @ by_item.T).toarray()
        dots /= np.outer(norms[start:stop], norms) + shrinkage + 1e-12
        dots[np.arange(stop - start), np.arange(start, stop)] = 0.0  # an item is not its own neighbour
        parts.append(top_n_per_row(dots, n_neighbours, start))
    # The similarity is symmetric: each row's top-N, transposed, is each target column's top-N.
    return assemble_rows(parts, n_items).T.tocsr()


def _sparse_cosine(by_item: sp.csr_matrix, norms: np.ndarray, n_neighbours: int, shrinkage: float) -> sp.csr_matrix:
    n_items = by_item.shape[0]
    blocks = []
    step = BLOCK * 8
    for start in range(0, n_items, step):
        dots = (by_item[start : start + step] @ by_item.T).tocsr()
        rows = np.repeat(np.arange(dots.shape[0]), np.diff(dots.indptr)) + start
        dots.data /= norms[rows] * norms[dots.indices] + shrinkage + 1e-12
        blocks.append(_truncate_sparse(dots, n_neighbours, row_offset=start))
    return sp.vstack(blocks, format="csr").T.tocsr() if blocks else sp.csr_matrix((0, 0), dtype=np.float32)


def truncate_rows(matrix: np.ndarray | sp.spmatrix, n_neighbours: int, *, signed: bool = False) -> sp.csr_matrix:
    """Keep the n largest positive off-diagonal entries of each row (dense or sparse), as CSR;
    with `signed`, the n of largest magnitude, negative ones included."""
    if sp.issparse(matrix):
        return _truncate_sparse(sp.csr_matrix(matrix, dtype=np.float32), n_neighbours, signed=signed)
    n_items = matrix.shape[0]
    parts = []
    for start in range(0, n_items, BLOCK):
        stop = min(start + BLOCK, n_items)
        block = np.array(matrix[start:stop], dtype=np.float32)
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        parts.append(top_n_per_row(block, n_neighbours, start, signed=signed))
    return assemble_rows(parts, n_items, matrix.shape[1])


def top_k_per_target(matrix: np.ndarray | sp.spmatrix, n_neighbours: int, *, signed: bool = False) -> sp.csr_matrix:
    """Rows are source items, columns target items (a visitor's score for target j sums column j
    over their history). Keep each TARGET's n strongest sources, so every item's prediction uses
    its own best evidence; truncating per source row instead starves items that are nobody's top
    neighbour (issue 22: HR@10 0.597 per row vs 0.660 per column on MovieLens 1M). Stored by
    source row (CSR) for scoring."""
    transposed = matrix.T if not sp.issparse(matrix) else sp.csr_matrix(matrix.T)
    return sp.csr_matrix(truncate_rows(transposed, n_neighbours, signed=signed).T)


def _truncate_sparse(matrix: sp.csr_matrix, n_neighbours: int, row_offset: int = 0, *, signed: bool = False) -> sp.csr_matrix:
    """Top-N positive (or, signed, largest-magnitude) entries per row; row r is item r +
    row_offset (whose own entry is dropped)."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    keep = ((matrix.data != 0) if signed else (matrix.data > 0)) & (matrix.indices != rows + row_offset)
    rows, columns, values = rows[keep], matrix.indices[keep], matrix.data[keep]
    strength = np.abs(values) if signed else values
    counts = np.bincount(rows, minlength=matrix.shape[0])
    crowded = np.flatnonzero(counts[rows] > n_neighbours)  # only rows with too many need sorting
    chosen = np.flatnonzero(counts[rows] <= n_neighbours)
    if crowded.size:
        # One float key sorts by row, then by strength descending within the row.
        key = rows[crowded] + 0.5 * (1.0 - strength[crowded] / (float(strength[crowded].max()) * 1.000001))
        order = crowded[np.argsort(key, kind="stable")]
        starts = np.searchsorted(rows[order], rows[order], side="left")
        chosen = np.concatenate([chosen, order[np.arange(order.size) - starts < n_neighbours]])
    result = sp.csr_matrix((values[chosen], (rows[chosen], columns[chosen])), shape=matrix.shape, dtype=np.float32)
    result.sort_indices()
    return result


def assemble_rows(parts, n_rows: int, n_cols: int | None = None) -> sp.csr_matrix:
    rows = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, dtype=np.int64)
    cols = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, dtype=np.int64)
    values = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, dtype=np.float32)
    shape = (n_rows, n_rows if n_cols is None else n_cols)
    result = sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float32)
    result.sort_indices()
    return result


def row_scale(matrix: sp.csr_matrix) -> float:
    """A component's typical strength (mean of row maxima), so blends compare like with like."""
    if matrix.nnz == 0:
        return 1.0
    maxima = np.asarray(matrix.max(axis=1).toarray()).ravel()
    maxima = maxima[maxima > 0]
    return float(maxima.mean()) if maxima.size else 1.0
