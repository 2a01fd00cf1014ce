"""EASE (Steck, 2019): a linear item-item model with a closed form, B = I - P / diag(P) where
P = (X'X + lambda I)^-1, and the diagonal of B forced to zero. Strong on implicit feedback,
cubic in the number of items, so it is fitted over at most `max_items` (the most popular ones);
the rest of the catalog is still served by the other components and the popularity fallback.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def gram(matrix: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """X'X over the chosen item columns, dense float32."""
    sub = matrix[:, columns].astype(np.float32)
    return (sub.T @ sub).toarray().astype(np.float32)


def ease_weights(gram_matrix: np.ndarray, lam: float) -> np.ndarray:
    """The EASE item x item weights for one ridge strength (float32, zero diagonal)."""
    regularised = gram_matrix.astype(np.float32, copy=True)
    regularised[np.diag_indices_from(regularised)] += np.float32(lam)
    precision = np.linalg.inv(regularised)
    weights = precision / (-np.diag(precision))[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32, copy=False)


def popular_columns(matrix: sp.csr_matrix, max_items: int) -> np.ndarray:
    """The (at most max_items) items with the most visitors, in index order."""
    counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
    seen = np.flatnonzero(counts > 0)
    if seen.size > max_items:
        seen = np.sort(seen[np.argsort(-counts[seen], kind="stable")[:max_items]])
    return seen


def embed(weights: np.ndarray, columns: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Place a columns x columns weight matrix into the full n_items x n_items index space."""
    block = sp.coo_matrix(weights)
    return sp.csr_matrix(
        (block.data, (columns[block.row], columns[block.col])), shape=(n_items, n_items), dtype=np.float32
    )
