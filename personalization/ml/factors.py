"""Implicit-feedback ALS (Hu, Koren and Volinsky 2008) and RP3beta (Paudel et al. 2017), each
stored as an item-item neighbour table so they serve through the same sparse sum as the rest.

ALS: confidence c_ui = 1 + alpha * x_ui, preference p_ui = [x_ui > 0]; alternating least squares
with a few conjugate-gradient steps per half-iteration, all users (or items) at once on
scipy.sparse (the method of Takacs et al. 2011 that the `implicit` library also uses). Serving
folds a visitor in with uniform confidence, x_u = (Y'Y + reg I)^-1 Y' p_u, so the score of item j
is sum_i p_ui W_ij with W = Y (Y'Y + reg I)^-1 Y': linear in the history, hence a neighbour
table, and validation scores exactly that table.

RP3beta: a two-step random walk item -> visitor -> item with transition probabilities raised to
alpha, each target divided by its popularity to the power beta (Dacrema et al. 2019's strongest
simple baseline).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .similarity import BLOCK, assemble_rows, top_n_per_row

CG_STEPS = 3


def als_factors(matrix: sp.csr_matrix, factors: int, reg: float, alpha: float, iterations: int = 12, seed: int = 0) -> np.ndarray:
    """Item factors Y (items x factors) of implicit ALS on a visitor x item matrix."""
    rng = np.random.default_rng(seed)
    users = sp.csr_matrix(matrix, dtype=np.float32, copy=True)  # eliminate_zeros works in place
    users.data = np.maximum(users.data, 0.0)
    users.eliminate_zeros()
    items = users.T.tocsr()
    x = (rng.standard_normal((users.shape[0], factors)) * 0.01).astype(np.float32)
    y = (rng.standard_normal((users.shape[1], factors)) * 0.01).astype(np.float32)
    for _ in range(iterations):
        x = _cg_half_step(users, x, y, reg, alpha)
        y = _cg_half_step(items, y, x, reg, alpha)
    return y


def _cg_half_step(ratings: sp.csr_matrix, solve: np.ndarray, fixed: np.ndarray, reg: float, alpha: float) -> np.ndarray:
    """A few CG steps on every row of `solve` at once, warm-started: minimise
    sum_i c_ui (p_ui - x_u.y_i)^2 + reg |x_u|^2 for each row u."""
    gram = fixed.T @ fixed + reg * np.eye(fixed.shape[1], dtype=np.float32)
    rows = np.repeat(np.arange(ratings.shape[0]), np.diff(ratings.indptr))
    confidence = (alpha * ratings.data).astype(np.float32)  # c - 1

    def apply(vectors: np.ndarray) -> np.ndarray:
        along = np.einsum("ij,ij->i", vectors[rows], fixed[ratings.indices]) * confidence
        extra = sp.csr_matrix((along, ratings.indices, ratings.indptr), shape=ratings.shape)
        return vectors @ gram + extra @ fixed

    target = sp.csr_matrix((confidence + 1.0, ratings.indices, ratings.indptr), shape=ratings.shape) @ fixed
    residual = target - apply(solve)
    direction = residual.copy()
    old = np.einsum("ij,ij->i", residual, residual)
    for _ in range(CG_STEPS):
        moved = apply(direction)
        step = old / np.maximum(np.einsum("ij,ij->i", direction, moved), 1e-20)
        solve = solve + step[:, None] * direction
        residual = residual - step[:, None] * moved
        new = np.einsum("ij,ij->i", residual, residual)
        direction = residual + (new / np.maximum(old, 1e-20))[:, None] * direction
        old = new
    return solve.astype(np.float32)


def als_neighbours(item_factors: np.ndarray, reg: float, n_neighbours: int) -> sp.csr_matrix:
    """W = Y (Y'Y + reg I)^-1 Y' (zero diagonal), each target's top-N sources by magnitude."""
    projection = np.linalg.inv(item_factors.T @ item_factors + reg * np.eye(item_factors.shape[1], dtype=np.float32))
    left = item_factors @ projection.astype(np.float32)
    n_items = item_factors.shape[0]
    parts = []
    for start in range(0, n_items, BLOCK):
        stop = min(start + BLOCK, n_items)
        block = item_factors[start:stop] @ left.T  # W is symmetric: row j is target j's sources
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        parts.append(top_n_per_row(block, n_neighbours, start, signed=True))
    return assemble_rows(parts, n_items).T.tocsr()


def rp3beta_neighbours(matrix: sp.csr_matrix, alpha: float, beta: float, n_neighbours: int) -> sp.csr_matrix:
    """W_ij = sum_u P(u|i)^alpha P(j|u)^alpha / pop_j^beta, each target j's top-N sources."""
    binary = sp.csr_matrix(matrix, dtype=np.float32, copy=True)  # eliminate_zeros works in place
    binary.data = (binary.data > 0).astype(np.float32)
    binary.eliminate_zeros()
    user_to_item = _row_normalised(binary, alpha)  # P(j | u)
    item_to_user = _row_normalised(binary.T.tocsr(), alpha)  # P(u | i)
    popularity = np.asarray(binary.sum(axis=0)).ravel()
    penalty = np.power(np.maximum(popularity, 1.0), -beta).astype(np.float32)
    by_target = user_to_item.T.tocsr()  # row j: P(j | u) over u
    sources = item_to_user.T.tocsc()  # column i: P(u | i) over u
    n_items = binary.shape[1]
    parts = []
    for start in range(0, n_items, BLOCK):
        stop = min(start + BLOCK, n_items)
        block = (by_target[start:stop] @ sources).toarray() * penalty[start:stop, None]
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        parts.append(top_n_per_row(block, n_neighbours, start))
    return assemble_rows(parts, n_items).T.tocsr()


def _row_normalised(matrix: sp.csr_matrix, power: float) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scaled = sp.diags(1.0 / np.maximum(sums, 1e-12)).astype(np.float32) @ matrix
    scaled = sp.csr_matrix(scaled, dtype=np.float32)
    scaled.data = np.power(scaled.data, power)
    return scaled
