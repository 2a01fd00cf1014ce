"""Offline ranking metrics: pure functions of a ranked list and the held-out items.

With one held-out item per visitor (leave-one-out), hit rate and recall are the same number.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np


def hit_rate(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 when any relevant item is in the top k, else 0.0."""
    return 1.0 if any(item in relevant for item in ranked[:k]) else 0.0


def recall(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant items found in the top k (0.0 when nothing is relevant)."""
    if not relevant:
        return 0.0
    return sum(1 for item in ranked[:k] if item in relevant) / len(relevant)


def ndcg(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Binary-relevance NDCG@k: DCG of the list over DCG of the ideal list."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return dcg / ideal


def coverage(lists: Iterable[Sequence[str]], n_items: int) -> float:
    """Share of the catalog that appears in at least one recommendation list."""
    if n_items <= 0:
        return 0.0
    shown = set()
    for ranked in lists:
        shown.update(ranked)
    return len(shown) / n_items


def novelty(lists: Iterable[Sequence[str]], visitors_per_item: Mapping[str, int], n_visitors: int) -> float:
    """Mean self-information -log2(p) of the recommended items, p = share of training visitors who
    interacted with the item. An item nobody interacted with counts as one visitor (no infinity)."""
    total, count = 0.0, 0
    for ranked in lists:
        for item in ranked:
            share = max(visitors_per_item.get(item, 0), 1) / max(n_visitors, 1)
            total += -math.log2(share)
            count += 1
    return total / count if count else 0.0


def bulk_hit_ndcg(scores: np.ndarray, held: np.ndarray, k: int) -> tuple[float, float]:
    """Mean HR@k and NDCG@k of one held-out item per row of a dense visitors x items score matrix
    (already-seen items set to -inf by the caller). A tie with the held item counts against it."""
    rows = np.arange(scores.shape[0])
    held_scores = scores[rows, held]
    rank = (scores >= held_scores[:, None]).sum(axis=1) - 1  # 0-based; ties ranked ahead
    hit = rank < k
    gains = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
    return float(hit.mean()) if hit.size else 0.0, float(gains.mean()) if gains.size else 0.0
