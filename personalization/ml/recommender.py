"""The recommender: a fitted, immutable, picklable object that scores a visitor in a sparse sum.

Every model here is linear in the visitor's history (item-kNN, content TF-IDF, EASE and their
blend), so each is stored the same way: the top-N neighbours of every item with a weight. A request
adds up the neighbour rows of the items the visitor saw (decayed by age), filters, and tops up with
trending items. Nothing scales with the catalog at request time.

Fallback order: the visitor's history (known items only) -> trending within their onboarding
preferences -> trending overall (time-decayed popularity, ties by all-time popularity).
"""

from __future__ import annotations

import heapq
import logging
import math
import time
import tracemalloc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from . import cold_start as short
from .catalog import PRODUCT, CatalogItem
from .content import content_neighbours, tfidf_vectors
from .ease import ease_weights, embed, gram, popular_columns
from .metrics import bulk_hit_ndcg
from .similarity import (
    KIND_WEIGHTS,
    assemble_rows,
    cosine_neighbours,
    decay,
    interaction_matrix,
    row_scale,
    top_k_per_target,
)

if TYPE_CHECKING:
    from .datasets import ValidationQuestions

logger = logging.getLogger(__name__)

# Scoring: the thumbs-down of an item pushes its neighbours down by this share of a view's weight.
DOWN_VOTE_HISTORY_WEIGHT = -1.0
# MMR: two items of the same (non-empty) category are at least this similar.
CATEGORY_SIMILARITY = 0.5
MMR_POOL = 50
# Scoring reads at most this many distinct history items, the most recent ones (their repeated
# events add weight): cost stays flat for a visitor with thousands of events (issue 22, item 4).
# Exclusion always covers the whole history given. Settable per model (RecommenderParams).
MAX_HISTORY = 100


@dataclass(frozen=True, slots=True)
class Interaction:
    visitor: str
    item: str
    kind: str  # "view" | "cart" | "purchase" | "up" | "down"
    ts: float  # epoch seconds


@dataclass(frozen=True)
class Recommendation:
    """Internal: one accepted candidate while a list is built."""

    index: int
    score: float


@dataclass(frozen=True)
class Recommender:
    """A fitted model. Build it with train_recommender (or Recommender.build); never mutate it."""

    item_ids: tuple[str, ...]
    neighbours: sp.csr_matrix  # item x item, top-N weights per row
    fallback_order: np.ndarray  # item indices, trending first
    fallback_score: np.ndarray  # per item, in [0, 1]
    category_codes: np.ndarray  # per item, index into `categories`
    categories: tuple[str, ...]
    in_stock: np.ndarray  # per item, bool
    history_half_life_days: float | None = 14.0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    max_history: int = MAX_HISTORY
    # Short histories (issue 22 item 5): None on models fitted before it, or without validation.
    cold_start: short.ColdStart | None = None
    # Per item, an index into `item_types` ("product", "article", ...; issue 22 item 6). None on
    # models fitted before item types: every item is then a product.
    item_type_codes: np.ndarray | None = None
    item_types: tuple[str, ...] = (PRODUCT,)
    index: Mapping[str, int] = field(init=False, repr=False)
    fallback_rank: np.ndarray = field(init=False, repr=False)
    by_category: Mapping[int, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index = {item: position for position, item in enumerate(self.item_ids)}
        rank = np.empty(len(self.item_ids), dtype=np.int64)
        rank[self.fallback_order] = np.arange(len(self.fallback_order))
        codes = self.category_codes[self.fallback_order]
        by_category = {code: self.fallback_order[codes == code] for code in range(len(self.categories))}
        for name, value in (("index", index), ("fallback_rank", rank), ("by_category", by_category)):
            object.__setattr__(self, name, value)
        for array in (self.fallback_order, self.fallback_score, self.category_codes, self.in_stock, rank):
            array.setflags(write=False)

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unversioned"))

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def recommend(
        self,
        history: Sequence[tuple[str, float]],
        k: int = 10,
        *,
        now: float | None = None,
        exclude: Collection[str] = (),
        down_voted: Collection[str] = (),
        preferences: Sequence[str] = (),
        category: str | None = None,
        diversity: float = 0.0,
        max_history: int | None = None,
        item_type: str | None = None,
    ) -> list[tuple[str, float]]:
        """Top-k (item, score), best first. History is (item, ts) newest first; unknown items are
        ignored; every item of the history (however long), excluded and out-of-stock items are
        never returned; down-voted items only when nothing else is left. Fewer than k results
        when the filters leave fewer. Only the `max_history` (default: the model's) most recent distinct items are
        scored, decayed from the newest event (`now` is accepted for callers' symmetry but never
        ages the history: a returning visitor's history keeps its shape). One to three known items,
        or none but `preferences`, are scored by the short-history blend (tailored.ml.cold_start).
        `item_type` keeps one type of item ("product", "article"; None: any)."""
        if k <= 0 or not self.item_ids:
            return []
        seen, weights, everything = self._history(history, max_history or self.max_history)
        down = self._indices(down_voted)
        blocked = set(everything.tolist()) | self._indices(exclude)
        allowed = self._category_filter(category)
        eligible = self._eligible(allowed, item_type)
        if allowed is None or eligible is None:
            return []
        pool_size = max(k, MMR_POOL) if diversity > 0 else k
        cold = self._short_history(everything.size, preferences)
        if cold is not None:
            candidates, scores = self._score_short(cold, seen, weights, down, everything.size, preferences)
        else:
            candidates, scores = self._score(seen, weights, down)
        if everything.size:  # what the visitor has leaves before sorting, however much it is
            fresh = ~np.isin(candidates, everything, assume_unique=True)
            candidates, scores = candidates[fresh], scores[fresh]
        excluded = blocked | down
        ranked = self._ranked(candidates, scores, pool_size + len(excluded) - everything.size + 16)
        accepted = self._take(ranked, pool_size, excluded, eligible)
        if len(accepted) < pool_size:
            accepted += self._top_up(pool_size - len(accepted), accepted, excluded, (allowed, eligible), preferences)
        if diversity > 0:
            accepted = self._mmr(accepted, k, min(diversity, 1.0))
        if len(accepted) < k:  # demoted, not banned: a down-voted item beats an empty slot
            accepted += self._take([self._by_fallback(down)], k - len(accepted), blocked, eligible)
        return [(self.item_ids[entry.index], entry.score) for entry in _monotone(accepted[:k])]

    def similar_items(self, item: str, k: int = 10) -> list[tuple[str, float]]:
        """The item's strongest neighbours (none for an unknown item)."""
        position = self.index.get(item)
        if position is None or k <= 0:
            return []
        start, stop = self.neighbours.indptr[position], self.neighbours.indptr[position + 1]
        columns, values = self.neighbours.indices[start:stop], self.neighbours.data[start:stop]
        positive = values > 0  # a negative (EASE) weight says "not like this"
        columns, values = columns[positive], values[positive]
        order = np.lexsort((self.fallback_rank[columns], -values))[:k]
        return [(self.item_ids[columns[i]], float(values[i])) for i in order]

    # -- scoring steps -------------------------------------------------------------------------

    def _history(self, history: Sequence[tuple[str, float]], cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scored items, their weights, every known item of the history). Weights are decayed
        from the newest event, so the same history always scores the same."""
        index = self.index
        known = [(index[item], ts) for item, ts in history if item in index]
        if not known:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0, dtype=np.float32), empty
        positions = np.fromiter((p for p, _ in known), dtype=np.int64, count=len(known))
        stamps = np.fromiter((float(ts) for _, ts in known), dtype=np.float64, count=len(known))
        scored, weights = history_weights(positions, stamps, self.history_half_life_days, cap)
        return scored, weights, np.unique(positions)

    def _indices(self, items: Iterable[str]) -> set[int]:
        return {self.index[item] for item in items if item in self.index}

    def _category_filter(self, category: str | None) -> int | None:
        """-1: any category; a code: that category; None: a category no item has."""
        if category is None:
            return -1
        return self.categories.index(category) if category in self.categories else None

    def _eligible(self, allowed: int | None, item_type: str | None) -> np.ndarray | None:
        """Per item, whether the filters let it be shown (in stock, the category, the item type);
        None when the item type is one no item has."""
        if allowed is None:
            return None
        eligible = self.in_stock if allowed < 0 else self.in_stock & (self.category_codes == allowed)
        if item_type is None:
            return eligible
        codes = getattr(self, "item_type_codes", None)  # absent from models pickled before item types
        types = self.item_types if codes is not None else (PRODUCT,)
        if item_type not in types:
            return None
        return eligible if codes is None else eligible & (codes == types.index(item_type))

    def _short_history(self, known: int, preferences: Sequence[str]) -> short.ColdStart | None:
        """The short-history blend, when this model has one and the visitor has 1 to its
        max_history known items, or none but categories from the onboarding survey."""
        cold = getattr(self, "cold_start", None)  # absent from models pickled before it
        if cold is None or known > cold.max_history:
            return None
        if known == 0 and not any(slug in self.categories and slug for slug in preferences):
            return None
        return cold

    def _score_short(
        self, cold: short.ColdStart, seen: np.ndarray, weights: np.ndarray, down: set[int], known: int, preferences: Sequence[str],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates and scores of the short-history blend: the same `blend_scores` validation
        chose its weights with, plus the chosen categories (PREFERENCE_WEIGHT)."""
        if down:
            seen = np.concatenate([seen, np.fromiter(down, dtype=np.int64, count=len(down))])
            weights = np.concatenate([weights, np.full(len(down), DOWN_VOTE_HISTORY_WEIGHT, dtype=np.float32)])
        history = sp.csr_matrix((weights, (np.zeros(seen.size, dtype=np.int64), seen)), shape=(1, self.n_items), dtype=np.float32)
        signals = self.signals(cold)
        blend_weights = cold.weights_for(known)
        total = short.blend_scores(short.signal_matrices(signals, history, [n for n, w in blend_weights.items() if w > 0]), blend_weights)[0]
        codes = [self.categories.index(slug) for slug in preferences if slug in self.categories]
        if codes:
            weight = short.PREFERENCE_WEIGHT if known else short.NO_HISTORY_PREFERENCE_WEIGHT
            total = total + weight * short.preference_rows(signals, codes)
        candidates = np.flatnonzero(total > 1e-9)
        return candidates, total[candidates].astype(np.float64)

    def signals(self, cold: short.ColdStart) -> short.Signals:
        """The short-history blend's inputs over this model's arrays (no copies)."""
        named = np.array([bool(name) for name in self.categories], dtype=bool)
        return short.Signals(self.neighbours, cold.content, self.category_codes, named, self.fallback_score)

    def _score(self, seen: np.ndarray, weights: np.ndarray, down: set[int]) -> tuple[np.ndarray, np.ndarray]:
        """Candidates (unordered) with a positive summed neighbour weight."""
        if down:
            seen = np.concatenate([seen, np.fromiter(down, dtype=np.int64, count=len(down))])
            weights = np.concatenate([weights, np.full(len(down), DOWN_VOTE_HISTORY_WEIGHT, dtype=np.float32)])
        if not seen.size:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        # One gather of every row's span, no Python loop: positions of row r's entries are
        # indptr[r] .. indptr[r + 1] - 1, laid end to end.
        indptr = self.neighbours.indptr
        starts, lengths = indptr[seen], indptr[seen + 1] - indptr[seen]
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        at = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
        columns = self.neighbours.indices[at]
        values = self.neighbours.data[at] * np.repeat(weights, lengths)
        if total * 8 > self.n_items:  # many entries: a dense accumulator beats sorting them
            totals = np.bincount(columns, weights=values, minlength=self.n_items)
            unique = np.flatnonzero(totals > 1e-9)
            return unique, totals[unique]
        unique, inverse = np.unique(columns, return_inverse=True)
        totals = np.bincount(inverse, weights=values)
        positive = totals > 1e-9
        return unique[positive], totals[positive]

    def _ranked(self, candidates: np.ndarray, scores: np.ndarray, first: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Candidates best first (ties: trending), in chunks: the top `first` (and anything tied
        with the last of them) are sorted alone, the rest only if the filters ask for more."""
        if candidates.size > first > 0:
            threshold = -np.partition(-scores, first - 1)[first - 1]
            head = scores >= threshold
            order = np.lexsort((self.fallback_rank[candidates[head]], -scores[head]))
            yield candidates[head][order], scores[head][order]
            candidates, scores = candidates[~head], scores[~head]
        order = np.lexsort((self.fallback_rank[candidates], -scores))
        yield candidates[order], scores[order]

    def _take(self, chunks: Iterable[tuple[np.ndarray, np.ndarray]], wanted: int, blocked: Collection[int], eligible: np.ndarray) -> list[Recommendation]:
        """The first `wanted` candidates that pass the business filters."""
        taken: list[Recommendation] = []
        for candidates, scores in chunks:
            for position, score in zip(candidates.tolist(), scores.tolist(), strict=True):
                if position in blocked or not eligible[position]:
                    continue
                taken.append(Recommendation(position, score))
                if len(taken) >= wanted:
                    return taken
        return taken

    def _by_fallback(self, positions: Collection[int]) -> tuple[np.ndarray, np.ndarray]:
        ordered = np.array(sorted(positions, key=lambda p: self.fallback_rank[p]), dtype=np.int64)
        return ordered, self.fallback_score[ordered] if ordered.size else np.empty(0)

    def _top_up(
        self, wanted: int, accepted: list[Recommendation], blocked: set[int], filters: tuple[int, np.ndarray], preferences: Sequence[str],
    ) -> list[Recommendation]:
        """Trending items: first within the visitor's preferred categories, then any. Scaled below
        the personalised scores so the returned scores stay in rank order."""
        allowed, eligible = filters
        scale = 0.5 * min((entry.score for entry in accepted), default=2.0)
        taken = blocked | {entry.index for entry in accepted}
        extra: list[Recommendation] = []
        for source in (self._preferred(preferences, allowed), self._fallback(allowed, eligible)):
            for position in source:
                if len(extra) >= wanted:
                    return extra
                if position in taken or not eligible[position]:
                    continue
                taken.add(position)
                extra.append(Recommendation(position, scale * float(self.fallback_score[position])))
        return extra

    def _preferred(self, preferences: Sequence[str], allowed: int) -> Iterator[int]:
        codes = {self.categories.index(slug) for slug in preferences if slug in self.categories}
        if allowed >= 0:
            codes &= {allowed}
        lists = [self.by_category[code].tolist() for code in sorted(codes)]
        return heapq.merge(*lists, key=lambda position: self.fallback_rank[position])

    def _fallback(self, allowed: int, eligible: np.ndarray) -> Iterator[int]:
        """Trending order, read in small chunks: a request seldom looks past the first few."""
        order = self.by_category[allowed] if allowed >= 0 else self.fallback_order
        if eligible is not self.in_stock:  # an item type: few of the catalog may pass
            order = order[eligible[order]]
        for start in range(0, order.size, 64):
            yield from order[start : start + 64].tolist()

    def _mmr(self, pool: list[Recommendation], k: int, trade_off: float) -> list[Recommendation]:
        """Maximal marginal relevance: each pick maximises (1 - t) * relevance - t * similarity
        to what is already picked. Relevance is the rank-preserving score scaled to [0, 1]."""
        if len(pool) <= 1:
            return pool
        positions = np.array([entry.index for entry in pool], dtype=np.int64)
        relevance = np.array([entry.score for entry in pool], dtype=np.float64)
        relevance = relevance / relevance.max() if relevance.max() > 0 else np.ones_like(relevance)
        similarity = self._pool_similarity(positions)
        chosen: list[int] = []
        closest = np.zeros(len(pool))
        remaining = np.ones(len(pool), dtype=bool)
        for _ in range(min(k, len(pool))):
            gain = np.where(remaining, (1 - trade_off) * relevance - trade_off * closest, -np.inf)
            pick = int(np.argmax(gain))
            chosen.append(pick)
            remaining[pick] = False
            closest = np.maximum(closest, similarity[pick])
        return [pool[i] for i in chosen]

    def _pool_similarity(self, positions: np.ndarray) -> np.ndarray:
        """Pairwise similarity in [0, 1] of the pool: neighbour weight (symmetrised, scaled by the
        largest weight) or sharing a category, whichever is larger."""
        weights = self.neighbours[positions][:, positions].toarray()
        weights = np.maximum(weights, weights.T)
        top = float(self.neighbours.data.max()) if self.neighbours.nnz else 1.0
        similarity = np.clip(weights / top, 0.0, 1.0) if top > 0 else np.zeros_like(weights)
        codes = self.category_codes[positions]
        named = np.array([bool(self.categories[code]) for code in codes])
        same = (codes[:, None] == codes[None, :]) & named[:, None] & named[None, :]
        return np.maximum(similarity, CATEGORY_SIMILARITY * same)


def history_weights(positions: np.ndarray, stamps: np.ndarray, half_life_days: float | None, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """The `cap` distinct items whose latest event is newest, each weighted by the sum of its
    events' decay from the newest event. Shared by serving and validation, so tuning scores
    exactly what a request scores."""
    if positions.size == 0:
        return positions, np.empty(0, dtype=np.float32)
    weights = decay(float(stamps.max()) - stamps, half_life_days)
    unique, first, inverse = np.unique(positions, return_index=True, return_inverse=True)
    totals = np.bincount(inverse, weights=weights)
    if unique.size > cap:  # newest latest event first; equal times: earlier in the given list
        latest = np.full(unique.size, -np.inf)
        np.maximum.at(latest, inverse, stamps)
        keep = np.sort(np.lexsort((first, -latest))[:cap])
        unique, totals = unique[keep], totals[keep]
    return unique, totals.astype(np.float32)


def _monotone(entries: list[Recommendation]) -> list[Recommendation]:
    """Scores never rise down the list (MMR and top-ups may reorder them)."""
    result, floor = [], math.inf
    for entry in entries:
        floor = min(floor, entry.score)
        result.append(Recommendation(entry.index, floor))
    return result


# -- from stored events ------------------------------------------------------------------------

# Stored event type -> interaction kind (recommendation_feedback maps by its vote).
EVENT_KINDS: Mapping[str, str] = {"page_view": "view", "add_to_cart": "cart", "purchase": "purchase"}


def interactions_from_events(
    rows: Iterable[tuple[str, str, str | None, Any, Mapping[str, Any] | None]], page_items: Collection[str] = (),
) -> list[Interaction]:
    """Interactions from stored events (visitor_id, type, item, ts, attrs): product page views,
    cart adds, each item of a purchase (attrs["items"]) and thumbs up/down on recommendations;
    and views of the pages in `page_items` (registered page types, issue 22 item 6), known by the
    page id tracker.js sends last in attrs["pages"]. Everything else (searches, scrolls, other
    pages) is no item signal. `ts` is epoch seconds or an aware datetime."""
    result: list[Interaction] = []
    for visitor, kind, item, ts, attrs in rows:
        if kind == "page_view" and not item and page_items:
            item = _viewed_page(attrs, page_items)
        attrs = attrs if isinstance(attrs, Mapping) else {}
        stamp = ts.timestamp() if isinstance(ts, datetime) else float(ts)
        if kind == "purchase":
            items = [_item_id(entry) for entry in attrs.get("items") or ([item] if item else [])]
            result += [Interaction(visitor, bought, "purchase", stamp) for bought in items if bought]
        elif kind == "recommendation_feedback" and item and attrs.get("vote") in ("up", "down"):
            result.append(Interaction(visitor, str(item), str(attrs["vote"]), stamp))
        elif kind in EVENT_KINDS and item:
            result.append(Interaction(visitor, str(item), EVENT_KINDS[kind], stamp))
    return result


def _viewed_page(attrs: Any, page_items: Collection[str]) -> str | None:
    pages = attrs.get("pages") if isinstance(attrs, Mapping) else None  # "4 12 19": sections, then the page
    page = pages.split()[-1] if isinstance(pages, str) and pages.split() else None
    return page if page in page_items else None


def _item_id(entry: Any) -> str | None:
    """A purchase line: a product id, or a mapping holding one."""
    if isinstance(entry, Mapping):
        entry = entry.get("product_id", entry.get("id"))
    return None if entry is None or isinstance(entry, bool) else str(entry)


# -- training ----------------------------------------------------------------------------------

COMPONENTS = ("knn", "content", "ease", "als", "rp3")
BLEND_MAX = 3  # components the blend search considers, the best on validation


@dataclass(frozen=True)
class RecommenderParams:
    """What to fit. Tuples of candidates (shrinkages, ease_lambdas) are tuned on validation."""

    components: tuple[str, ...] = COMPONENTS  # any of COMPONENTS; () = popularity/trending only
    neighbours: int = 100
    shrinkages: tuple[float, ...] = (10.0, 50.0, 200.0)
    ease_lambdas: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 5000.0)  # log grid
    als_settings: tuple[tuple[int, float, float], ...] = ((64, 10.0, 10.0), (64, 50.0, 20.0), (128, 50.0, 10.0))  # factors, reg, alpha
    rp3_settings: tuple[tuple[float, float], ...] = ((1.0, 0.3), (0.8, 0.5), (1.0, 0.0), (0.6, 0.2))  # alpha, beta
    tuning_seconds: float = 180.0  # settings left when validation has run this long are skipped (logged)
    ease_max_items: int = 3000  # EASE is cubic in items: fitted over the most popular ones
    ease_item_limit: int = 20_000  # more items with interactions than this: no EASE (see train_recommender)
    decay_half_life_days: float | None = 90.0  # training events; None = no time decay
    trending_half_life_days: float | None = 7.0  # None = all-time popularity
    history_half_life_days: float | None = 14.0  # the visitor's history at scoring time
    max_history: int = MAX_HISTORY  # distinct history items scored per request
    blend_step: float = 0.25
    validation_visitors: int = 3000
    cold_start: bool = True  # tune and serve the short-history blend (tailored.ml.cold_start)
    # More items with interactions than this: no short-history blend. Its tuning refits the chosen
    # blend once more, which on the 50,000-item bench shop would add minutes to a 10-minute budget.
    cold_start_item_limit: int = 20_000
    kind_weights: Mapping[str, float] = field(default_factory=lambda: dict(KIND_WEIGHTS))


@dataclass(frozen=True)
class Encoded:
    """Interactions as index arrays over one item universe."""

    item_ids: tuple[str, ...]
    visitors: np.ndarray
    items: np.ndarray
    kinds: tuple[str, ...]
    ts: np.ndarray
    n_visitors: int

    def subset(self, mask: np.ndarray) -> Encoded:
        kinds = tuple(kind for kind, keep in zip(self.kinds, mask.tolist(), strict=True) if keep)
        return Encoded(self.item_ids, self.visitors[mask], self.items[mask], kinds, self.ts[mask], self.n_visitors)

    def matrix(self, now: float, params: RecommenderParams) -> sp.csr_matrix:
        return interaction_matrix(
            self.visitors, self.items, self.kinds, self.ts, (self.n_visitors, len(self.item_ids)),
            now=now, half_life_days=params.decay_half_life_days, kind_weights=params.kind_weights,
        )


def encode(interactions: Sequence[Interaction], catalog: Sequence[CatalogItem]) -> Encoded:
    """Index the interactions over the catalog (items outside a non-empty catalog are dropped:
    nothing is known about their stock or category, so they could not be filtered; a warning
    says how many, since a catalog loaded from the wrong site empties the model silently)."""
    item_ids = tuple(dict.fromkeys(item.id for item in catalog)) or tuple(sorted({i.item for i in interactions}))
    index = {item: position for position, item in enumerate(item_ids)}
    kept = [i for i in interactions if i.item in index]
    if len(kept) < len(interactions):
        outside = {i.item for i in interactions if i.item not in index}
        logger.warning(
            "%d of %d interactions name %d items outside the catalog of %d items; they are left out of training",
            len(interactions) - len(kept), len(interactions), len(outside), len(item_ids),
        )
    visitor_index: dict[str, int] = {}
    visitors = np.fromiter((visitor_index.setdefault(i.visitor, len(visitor_index)) for i in kept), dtype=np.int64, count=len(kept))
    items = np.fromiter((index[i.item] for i in kept), dtype=np.int64, count=len(kept))
    ts = np.fromiter((i.ts for i in kept), dtype=np.float64, count=len(kept))
    return Encoded(item_ids, visitors, items, tuple(i.kind for i in kept), ts, len(visitor_index))


def train_recommender(
    interactions: Sequence[Interaction],
    catalog: Sequence[CatalogItem],
    *,
    now: float,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    params: RecommenderParams | None = None,
) -> Recommender:
    """Fit the hybrid: tune each component and the blend weights on a validation split of the
    interactions (the latest new items of up to `validation_visitors` visitors), then refit
    on everything and precompute the blended top-N neighbours. Deterministic for a seed."""
    from .datasets import validation_split

    params = params or RecommenderParams()
    say = progress or (lambda message: None)
    started = time.perf_counter()
    encoded = encode(interactions, catalog)
    say(f"{len(encoded.items)} interactions, {encoded.n_visitors} visitors, {len(encoded.item_ids)} items")
    clock, params = training_clock(encoded.ts, params)
    params = ease_within_budget(encoded, params, say)
    say("no usable timestamps (missing or all equal): time decay is off" if clock is None else "time decay measured from the newest interaction")
    reference = clock or 0.0
    choice = Choice(weights={}, shrinkage=params.shrinkages[0], lam=params.ease_lambdas[0], validation={})
    cold: short.ColdStart | None = None
    if encoded.n_visitors:
        fit_mask, questions = validation_split(encoded, seed=seed, max_visitors=params.validation_visitors)
        if len(questions) and clock is not None:  # popularity alone too: its trending decays
            params = choose_decay(encoded, fit_mask, questions, now=reference, params=params, say=say)
        if len(questions) and params.components:
            choice = tune(encoded, fit_mask, questions, catalog, now=reference, params=params, say=say)
        if len(questions) and short_history_within_budget(encoded, params, say):
            cold = tune_short_histories(encoded, questions, catalog, now=reference, params=params, choice=choice, say=say)
    say(f"fitting on all interactions with {choice.describe()}")
    model = fit(encoded, catalog, now=reference, params=params, choice=choice, fitted_at=now, cold=cold)
    metadata = {**model.metadata, "fit_seconds": round(time.perf_counter() - started, 3), "seed": seed}
    return replace(model, metadata=metadata)  # __post_init__ rebuilds the derived lookups


def tune_short_histories(
    encoded: Encoded, questions: ValidationQuestions, catalog: Sequence[CatalogItem], *,
    now: float, params: RecommenderParams, choice: Choice, say: Callable[[str], None],
) -> short.ColdStart:
    """The short-history blend's weights per history length (issue 22 item 5). The validation
    visitors play new visitors: every event of theirs is left out, the chosen blend is refitted
    on everyone else (its collaborative signal), and each is asked after their first 1, 2 and 3
    items for the next one, as `tailored_evaluate --cold-start` asks test visitors."""
    newcomers = questions.newcomers()
    rest = encoded.subset(~np.isin(encoded.visitors, newcomers))
    matrix = rest.matrix(now, params)
    _, trending = fallback_ranking(rest, matrix, now=now, half_life_days=params.trending_half_life_days)
    collaborative, components = fit_choice(matrix, encoded.item_ids, catalog, params, choice)
    content = components.get("content")
    if content is None:
        content = content_neighbours(tfidf_vectors(_aligned(encoded.item_ids, catalog)), params.neighbours)
    codes, categories = _category_codes(encoded.item_ids, catalog)
    signals = short.Signals(collaborative, content, codes, np.array([bool(name) for name in categories], dtype=bool), trending)
    say(f"short histories: {newcomers.size} validation visitors as new visitors; signals {', '.join(signals.available()) or 'none'}")
    weights, figures = short.tune_weights(signals, newcomer_slices(encoded, newcomers, params), say)
    return short.ColdStart(content=content, weights=weights, validation=figures)


def newcomer_slices(encoded: Encoded, newcomers: np.ndarray, params: RecommenderParams) -> dict[int, short.ShortHistories]:
    """Per history length n, the newcomers with more than n distinct items: their first n (in
    time order; without times, as listed), weighted as a request weights them, and the next one."""
    positive = np.fromiter((kind != "down" for kind in encoded.kinds), dtype=bool, count=len(encoded.kinds))
    mine = np.flatnonzero(np.isin(encoded.visitors, newcomers) & positive)
    mine = mine[np.lexsort((mine, encoded.ts[mine], encoded.visitors[mine]))]
    n_items = len(encoded.item_ids)
    cells: dict[int, list[tuple[np.ndarray, np.ndarray, int]]] = {n: [] for n in range(1, short.MAX_HISTORY + 1)}
    bounds = np.flatnonzero(np.r_[True, np.diff(encoded.visitors[mine]) != 0, True]) if mine.size else np.array([0])
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        events = mine[start:stop]
        order = list(dict.fromkeys(encoded.items[events].tolist()))
        for length in cells:
            if len(order) <= length:
                break
            first = np.isin(encoded.items[events], order[:length])
            items, weights = history_weights(encoded.items[events[first]], encoded.ts[events[first]], params.history_half_life_days, length)
            cells[length].append((items, weights, order[length]))
    slices = {}
    for length, found in cells.items():
        found = found[: short.VALIDATION_VISITORS]
        rows = np.concatenate([np.full(items.size, row) for row, (items, _, _) in enumerate(found)]) if found else np.empty(0, dtype=np.int64)
        columns = np.concatenate([items for items, _, _ in found]) if found else np.empty(0, dtype=np.int64)
        values = np.concatenate([weights for _, weights, _ in found]) if found else np.empty(0, dtype=np.float32)
        history = sp.csr_matrix((values, (rows, columns)), shape=(len(found), n_items), dtype=np.float32)
        seen = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, columns)), shape=(len(found), n_items))
        slices[length] = short.ShortHistories(history, seen, np.array([target for _, _, target in found], dtype=np.int64))
    return slices


def fit_choice(
    matrix: sp.csr_matrix, item_ids: Sequence[str], catalog: Sequence[CatalogItem], params: RecommenderParams, choice: Choice,
    costs: dict[str, dict[str, float]] | None = None,
) -> tuple[sp.csr_matrix, dict[str, sp.csr_matrix]]:
    """The blended neighbour table of what validation chose, fitted on `matrix`, and its parts."""
    wanted = [name for name, weight in choice.weights.items() if weight > 0]
    others = [_variant(name, choice) for name in wanted if name in ("als", "rp3")]
    components = fit_components(matrix, catalog, item_ids, params, wanted, [choice.shrinkage], [choice.lam], others, costs=costs)
    parts = {name: components[_variant(name, choice)] for name in wanted}
    return blend(parts, choice.weights, params.neighbours, len(item_ids)), parts


def choose_decay(
    encoded: Encoded, fit_mask: np.ndarray, questions: ValidationQuestions, *, now: float, params: RecommenderParams, say: Callable[[str], None],
) -> RecommenderParams:
    """Time decay as configured, or none, whichever an item-kNN (first shrinkage; no table when
    fitting popularity alone) with its trending ties ranks better on validation: a shop's last quarter says more than last year,
    a film site's ratings of twenty years do not age like that (issue 22)."""
    off = replace(params, decay_half_life_days=None, trending_half_life_days=None)
    if (params.decay_half_life_days, params.trending_half_life_days) == (None, None):
        return params
    part = encoded.subset(fit_mask)
    found = []
    for option in (params, off):
        matrix = part.matrix(now, option)
        _, tie = fallback_ranking(part, matrix, now=now, half_life_days=option.trending_half_life_days)
        checks = ValidationSet(*validation_histories(encoded, questions, option), questions.targets, tie)
        table = cosine_neighbours(matrix, option.neighbours, option.shrinkages[0]) if params.components else sp.csr_matrix(matrix.shape[1:] * 2, dtype=np.float32)
        found.append(validate(table, checks)[::-1])
    chosen = params if found[0] >= found[1] else off
    say(f"time decay {'kept' if chosen is params else 'off'}: validation NDCG@10 {found[0][0]:.4f} with, {found[1][0]:.4f} without")
    return chosen


def short_history_within_budget(encoded: Encoded, params: RecommenderParams, say: Callable[[str], None]) -> bool:
    """Whether to tune the short-history blend: asked for, and at most `cold_start_item_limit`
    items with interactions (else one log line says short histories use the neighbour table)."""
    if not params.cold_start:
        return False
    active = int(np.unique(encoded.items).size)
    if active > params.cold_start_item_limit:
        say(f"short-history blend left out: {active} items with interactions is above cold_start_item_limit "
            f"{params.cold_start_item_limit}; short histories are scored by the neighbour table")
        return False
    return True


def ease_within_budget(encoded: Encoded, params: RecommenderParams, say: Callable[[str], None]) -> RecommenderParams:
    """EASE only up to `ease_item_limit` items with interactions: its memory grows with items
    squared, and its popular head (ease_max_items) would cover too little of a larger catalog;
    item-kNN, ALS and RP3beta carry on without it."""
    active = int(np.unique(encoded.items).size)
    if "ease" in params.components and active > params.ease_item_limit:
        say(f"EASE left out: {active} items with interactions is above ease_item_limit {params.ease_item_limit}; "
            "fitting " + ", ".join(name for name in params.components if name != "ease"))
        return replace(params, components=tuple(name for name in params.components if name != "ease"))
    return params


def training_clock(ts: np.ndarray, params: RecommenderParams) -> tuple[float | None, RecommenderParams]:
    """The time that training decay and trending are measured from: the newest interaction, never
    the wall clock (equally old data must fit the same model today and next year). None, and
    every decay switched off, when timestamps are missing (all zero) or all equal: decaying
    from an arbitrary clock emptied the neighbour table (issue 22)."""
    if ts.size == 0 or float(ts.max()) <= 0.0 or float(ts.max()) == float(ts.min()):
        return None, replace(params, decay_half_life_days=None, trending_half_life_days=None, history_half_life_days=None)
    return float(ts.max()), params


def publish_problem(model: Recommender) -> str | None:
    """Why a freshly fitted model must not replace the published one (None: publish it)."""
    components = tuple(model.metadata.get("params", {}).get("components", ()))
    if components and model.neighbours.nnz == 0:
        return "its neighbour table is empty (no two items were ever seen together by one visitor)"
    validation = model.metadata.get("validation", {})
    ndcg, popular = validation.get("ndcg@10"), validation.get("popularity_ndcg@10")
    if ndcg is not None and popular is not None and ndcg < popular:
        return f"its validation NDCG@10 {ndcg:.4f} is below popularity's {popular:.4f}"
    return None


@dataclass(frozen=True)
class Choice:
    """What validation picked: blend weights per component and the components' own settings
    (`variants`: component -> its setting, "als:64:10:10"; knn and ease also by shrinkage, lam)."""

    weights: Mapping[str, float]
    shrinkage: float
    lam: float
    validation: Mapping[str, float]
    variants: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        blend = ", ".join(f"{name} {weight:.2f}" for name, weight in self.weights.items() if weight) or "popularity only"
        chosen = ", ".join(_variant(name, self) for name, weight in self.weights.items() if weight)
        return f"blend [{blend}]" + (f", settings {chosen}" if chosen else "")


def fit(
    encoded: Encoded, catalog: Sequence[CatalogItem], *, now: float, params: RecommenderParams, choice: Choice,
    fitted_at: float | None = None, cold: short.ColdStart | None = None,
) -> Recommender:
    """Fit the chosen components on all of `encoded` and store their blend. `now` is the training
    clock (decay and trending), `fitted_at` the wall-clock time it names the version by."""
    fitted_at = now if fitted_at is None else fitted_at
    matrix = encoded.matrix(now, params)
    wanted = [name for name, weight in choice.weights.items() if weight > 0]
    costs: dict[str, dict[str, float]] = {}
    neighbours, _ = fit_choice(matrix, encoded.item_ids, catalog, params, choice, costs)
    order, score = fallback_ranking(encoded, matrix, now=now, half_life_days=params.trending_half_life_days)
    codes, categories = _category_codes(encoded.item_ids, catalog)
    metadata = {
        "version": f"rec-{int(fitted_at)}-{len(encoded.items)}",
        "fitted_at": datetime.fromtimestamp(fitted_at, UTC).isoformat(timespec="seconds"),
        "n_items": len(encoded.item_ids),
        "n_visitors": encoded.n_visitors,
        "n_interactions": len(encoded.items),
        "weights": dict(choice.weights),
        "shrinkage": choice.shrinkage,
        "ease_lambda": choice.lam,
        "variants": {name: _variant(name, choice) for name in wanted},
        "fit_cost": costs,  # per component: seconds and peak MB of the final fit
        "validation": dict(choice.validation),
        "params": {key: value for key, value in asdict(params).items() if key != "kind_weights"},
        "kind_weights": dict(params.kind_weights),
        "neighbour_bytes": int(neighbours.data.nbytes + neighbours.indices.nbytes + neighbours.indptr.nbytes),
        "short_history": {"weights": {str(n): dict(w) for n, w in cold.weights.items()}, "validation": dict(cold.validation)} if cold else None,
    }
    type_codes, item_types = _item_type_codes(encoded.item_ids, catalog)
    return Recommender(
        item_ids=encoded.item_ids,
        neighbours=neighbours,
        fallback_order=order,
        fallback_score=score,
        category_codes=codes,
        categories=categories,
        in_stock=_in_stock(encoded.item_ids, catalog),
        history_half_life_days=params.history_half_life_days,
        metadata=metadata,
        max_history=params.max_history,
        cold_start=cold,
        item_type_codes=type_codes,
        item_types=item_types,
    )


def _variant(name: str, choice: Choice) -> str:
    if name in choice.variants:
        return choice.variants[name]
    return {"knn": f"knn:{choice.shrinkage:g}", "ease": f"ease:{choice.lam:g}"}.get(name, name)


def other_variants(params: RecommenderParams, names: Collection[str]) -> list[str]:
    """The ALS and RP3beta settings to try, as variant names."""
    variants = [f"als:{f}:{reg:g}:{alpha:g}" for f, reg, alpha in params.als_settings] if "als" in names else []
    return variants + ([f"rp3:{alpha:g}:{beta:g}" for alpha, beta in params.rp3_settings] if "rp3" in names else [])


def fit_components(
    matrix: sp.csr_matrix,
    catalog: Sequence[CatalogItem],
    item_ids: Sequence[str],
    params: RecommenderParams,
    names: Collection[str],
    shrinkages: Sequence[float],
    lambdas: Sequence[float],
    others: Sequence[str] = (),
    deadline: float | None = None,
    say: Callable[[str], None] = lambda message: None,
    costs: dict[str, dict[str, float]] | None = None,
) -> dict[str, sp.csr_matrix]:
    """Top-N neighbour matrices of each wanted component, one per setting ("knn:10", "ease:200",
    "als:64:10:10", "rp3:1:0.3"). Past `deadline` (perf_counter), the settings not yet fitted
    are skipped, each component keeping at least its first."""
    n = params.neighbours
    jobs: list[tuple[str, Callable[[], sp.csr_matrix]]] = [(variant, lambda v=variant: _fit_other(matrix, v, n)) for variant in others]
    if "knn" in names:
        jobs += [(f"knn:{shrink:g}", lambda shrink=shrink: cosine_neighbours(matrix, n, shrink)) for shrink in shrinkages]
    if "content" in names:
        jobs.append(("content", lambda: content_neighbours(tfidf_vectors(_aligned(item_ids, catalog)), n)))
    if "ease" in names:
        columns = popular_columns(matrix, params.ease_max_items)
        head: list[np.ndarray] = []  # the Gram matrix, computed once for every lambda
        jobs += [(f"ease:{lam:g}", lambda lam=lam: _fit_ease(matrix, columns, head, lam, n, len(item_ids))) for lam in lambdas]
    fitted: dict[str, sp.csr_matrix] = {}
    for variant, job in jobs:
        if _over(deadline, fitted, variant, say):
            continue
        started, tracing = time.perf_counter(), _trace_start()
        fitted[variant] = job()
        seconds, peak_mb = time.perf_counter() - started, _trace_peak_mb(tracing)
        if costs is not None:
            costs[variant] = {"seconds": round(seconds, 2), "peak_mb": round(peak_mb, 3)}
        say(f"  {variant:<12} fitted in {seconds:.1f} s, peak {peak_mb:.0f} MB")
    return fitted


def _fit_ease(matrix: sp.csr_matrix, columns: np.ndarray, head: list[np.ndarray], lam: float, n: int, n_items: int) -> sp.csr_matrix:
    if not head:
        head.append(gram(matrix, columns))
    # Signed: EASE's negative weights are half its signal (issue 22: positives only lost 0.04
    # HR@10 on MovieLens 1M); truncated per target column like every component.
    return embed(top_k_per_target(ease_weights(head[0], lam), n, signed=True), columns, n_items)


def _trace_start() -> bool:
    """Peak memory per fit, as numpy reports its allocations to tracemalloc (issue 22 item 7);
    True when this call started tracing (and the fit must stop it: tracing slows scoring)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    return started


def _trace_peak_mb(started: bool) -> float:
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    if started:
        tracemalloc.stop()
    return peak


def _over(deadline: float | None, fitted: Mapping[str, object], variant: str, say: Callable[[str], None]) -> bool:
    """Past the tuning budget, and this component already has a setting: skip it (and say so)."""
    component = variant.split(":")[0]
    if deadline is None or time.perf_counter() < deadline or not any(name.split(":")[0] == component for name in fitted):
        return False
    say(f"  {variant:<12} skipped: the tuning budget is spent")
    return True


def _fit_other(matrix: sp.csr_matrix, variant: str, n_neighbours: int) -> sp.csr_matrix:
    from .factors import als_factors, als_neighbours, rp3beta_neighbours

    name, *settings = variant.split(":")
    if name == "als":
        factors, reg, alpha = int(settings[0]), float(settings[1]), float(settings[2])
        return als_neighbours(als_factors(matrix, factors, reg, alpha), reg, n_neighbours)
    return rp3beta_neighbours(matrix, float(settings[0]), float(settings[1]), n_neighbours)


def blend(parts: Mapping[str, sp.csr_matrix], weights: Mapping[str, float], n_neighbours: int, n_items: int) -> sp.csr_matrix:
    """Weighted sum of components, each scaled to a typical row maximum of 1, truncated to each
    target's top-N sources by magnitude (signed)."""
    total = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    for name, part in parts.items():
        weight = weights.get(name, 0.0)
        if weight > 0 and part.nnz:
            total = total + part * np.float32(weight / row_scale(part))
    return top_k_per_target(total, n_neighbours, signed=True) if len(parts) > 1 else total.tocsr()


def fallback_ranking(encoded: Encoded, matrix: sp.csr_matrix, *, now: float, half_life_days: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Items by trending (decayed count of positive events), then all-time visitors, then index.
    Decay shrinks every count by the same factor as time passes, so the order fitted at `now`
    stays right later; only new events change it (at the next fit)."""
    n_items = len(encoded.item_ids)
    positive = np.fromiter((kind != "down" for kind in encoded.kinds), dtype=bool, count=len(encoded.kinds))
    weights = decay(now - encoded.ts[positive], half_life_days)
    trending = np.bincount(encoded.items[positive], weights=weights, minlength=n_items)
    visitors = np.bincount(matrix.indices[matrix.data > 0], minlength=n_items).astype(np.float64)
    order = np.lexsort((np.arange(n_items), -visitors, -trending))
    top = trending.max() if n_items and trending.max() > 0 else 1.0
    # Ties in trending still get distinct, ordered scores from the all-time count.
    score = 0.99 * trending / top + 0.01 * visitors / max(visitors.max(initial=0.0), 1.0)
    return order.astype(np.int64), score.astype(np.float32)


def _aligned(item_ids: Sequence[str], catalog: Sequence[CatalogItem]) -> list[CatalogItem]:
    by_id = {item.id: item for item in catalog}
    return [by_id.get(item, CatalogItem(id=item, title="", category="")) for item in item_ids]


def _category_codes(item_ids: Sequence[str], catalog: Sequence[CatalogItem]) -> tuple[np.ndarray, tuple[str, ...]]:
    aligned = _aligned(item_ids, catalog)
    categories = tuple(sorted({item.category for item in aligned}))
    lookup = {name: code for code, name in enumerate(categories)}
    return np.array([lookup[item.category] for item in aligned], dtype=np.int64), categories


def _item_type_codes(item_ids: Sequence[str], catalog: Sequence[CatalogItem]) -> tuple[np.ndarray, tuple[str, ...]]:
    aligned = _aligned(item_ids, catalog)
    types = tuple(dict.fromkeys([PRODUCT, *sorted({item.item_type for item in aligned})]))
    lookup = {name: code for code, name in enumerate(types)}
    return np.array([lookup[item.item_type] for item in aligned], dtype=np.int64), types


def _in_stock(item_ids: Sequence[str], catalog: Sequence[CatalogItem]) -> np.ndarray:
    return np.array([item.in_stock for item in _aligned(item_ids, catalog)], dtype=bool)



def tune(
    encoded: Encoded,
    fit_mask: np.ndarray,
    questions: ValidationQuestions,
    catalog: Sequence[CatalogItem],
    *,
    now: float,
    params: RecommenderParams,
    say: Callable[[str], None],
) -> Choice:
    """Pick each component's setting, then the blend weights, by validation NDCG@10."""
    part = encoded.subset(fit_mask)
    matrix = part.matrix(now, params)
    _, tie = fallback_ranking(part, matrix, now=now, half_life_days=params.trending_half_life_days)
    checks = ValidationSet(*validation_histories(encoded, questions, params), questions.targets, tie)
    say(f"validation: {questions.newcomers().size} visitors, {len(questions)} next-item questions (their latest new items when events have times)")
    popular = validate(sp.csr_matrix((len(encoded.item_ids), len(encoded.item_ids)), dtype=np.float32), checks)
    say(f"  {'popularity':<12} HR@10 {popular[0]:.4f}  NDCG@10 {popular[1]:.4f}")
    deadline = time.perf_counter() + params.tuning_seconds
    components = fit_components(
        matrix, catalog, encoded.item_ids, params, params.components, params.shrinkages, params.ease_lambdas,
        other_variants(params, params.components), deadline, say,
    )
    found = {name: validate(part_matrix, checks) for name, part_matrix in components.items()}
    for name, (hr, ndcg) in found.items():
        say(f"  {name:<12} HR@10 {hr:.4f}  NDCG@10 {ndcg:.4f}")
    best = {name: _best(found, name) for name in params.components}
    shrinkage = float(best["knn"].split(":")[1]) if "knn" in best else params.shrinkages[0]
    lam = float(best["ease"].split(":")[1]) if "ease" in best else params.ease_lambdas[0]
    parts = {name: components[variant] for name, variant in best.items()}
    weights, figures = _tune_blend(parts, checks, params, say)
    figures.update({f"popularity_{name}": value for name, value in _figures(popular).items()})
    return Choice(weights=weights, shrinkage=shrinkage, lam=lam, validation=figures, variants=dict(best))


@dataclass(frozen=True)
class ValidationSet:
    """Validation visitors: the weighted history a request would score, everything they have
    (never ranked), the held-out item, and trending to break ties as recommend() does."""

    history: sp.csr_matrix
    seen: sp.csr_matrix
    targets: np.ndarray
    tie: np.ndarray


def validation_histories(encoded: Encoded, questions: ValidationQuestions, params: RecommenderParams) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(history, seen) rows, one per validation question: everything the visitor did before it,
    weighted and capped exactly as Recommender._history does at serving, and every item of it
    (never ranked)."""
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    had: list[tuple[np.ndarray, np.ndarray]] = []
    for row, events in enumerate(questions.histories):
        items, weights = history_weights(encoded.items[events], encoded.ts[events], params.history_half_life_days, params.max_history)
        cells.append((np.full(items.size, row), items, weights))
        everything = np.unique(encoded.items[events])
        had.append((np.full(everything.size, row), everything))
    shape = (len(questions), len(encoded.item_ids))
    history = assemble_rows(cells, shape[0], shape[1]) if cells else sp.csr_matrix(shape, dtype=np.float32)
    rows = np.concatenate([r for r, _ in had]) if had else np.empty(0, dtype=np.int64)
    columns = np.concatenate([c for _, c in had]) if had else np.empty(0, dtype=np.int64)
    seen = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, columns)), shape=shape)
    return history, seen


def _best(found: Mapping[str, tuple[float, float]], component: str) -> str:
    variants = [name for name in found if name.split(":")[0] == component]
    return max(variants, key=lambda name: (found[name][1], found[name][0]))  # first wins ties


def _tune_blend(
    parts: Mapping[str, sp.csr_matrix], checks: ValidationSet, params: RecommenderParams, say: Callable[[str], None],
) -> tuple[dict[str, float], dict[str, float]]:
    names = list(parts)
    if len(names) <= 1:
        weights = dict.fromkeys(names, 1.0)
        return weights, _figures(validate(parts[names[0]], checks)) if names else {}
    best_weights: dict[str, float] = {}
    best_figures = (-1.0, -1.0)
    # Blends of at most two of the three best components: the full simplex over five components
    # is 70 fits, and a third component never gained on validation (issue 22).
    ranked = sorted(names, key=lambda name: validate(parts[name], checks)[::-1], reverse=True)[:BLEND_MAX]
    grid = [w for w in blend_grid(ranked, params.blend_step) if sum(1 for v in w.values() if v > 0) <= 2]
    for weights in grid:
        merged = blend(parts, weights, params.neighbours, checks.history.shape[1])
        hr, ndcg = validate(merged, checks)
        if (ndcg, hr) > best_figures[::-1]:
            best_weights, best_figures = {**dict.fromkeys(names, 0.0), **weights}, (hr, ndcg)
    say("  blend " + ", ".join(f"{n} {w:.2f}" for n, w in best_weights.items()) + f": HR@10 {best_figures[0]:.4f}  NDCG@10 {best_figures[1]:.4f}")
    return best_weights, _figures(best_figures)


def _figures(pair: tuple[float, float]) -> dict[str, float]:
    return {"hr@10": round(pair[0], 4), "ndcg@10": round(pair[1], 4)}


def blend_grid(names: Sequence[str], step: float) -> list[dict[str, float]]:
    """Every weighting of the components on a grid of `step` that sums to one."""
    units = max(1, round(1 / step))
    grid: list[dict[str, float]] = []

    def extend(prefix: list[int], left: int) -> None:
        if len(prefix) == len(names) - 1:
            grid.append({name: units_ / units for name, units_ in zip(names, [*prefix, left], strict=True)})
            return
        for share in range(left, -1, -1):
            extend([*prefix, share], left - share)

    if names:
        extend([], units)
    return grid


def validate(neighbours: sp.csr_matrix, checks: ValidationSet, chunk: int = 256) -> tuple[float, float]:
    """HR@10 and NDCG@10 of a neighbour matrix over validation visitors, scored in bulk as
    recommend() scores: the same weighted, capped sparse sum; only positive sums ranked by score,
    the rest by trending; nothing the visitor has."""
    history, targets = checks.history, checks.targets
    hits = gains = 0.0
    for start in range(0, history.shape[0], chunk):
        rows = history[start : start + chunk]
        scores = (rows @ neighbours).toarray().astype(np.float64)
        scores[scores <= 1e-9] = 0.0
        scores += 1e-6 * checks.tie[None, :]
        scores[checks.seen[start : start + chunk].nonzero()] = -np.inf
        hr, ndcg = bulk_hit_ndcg(scores, targets[start : start + chunk], 10)
        hits += hr * rows.shape[0]
        gains += ndcg * rows.shape[0]
    count = max(history.shape[0], 1)
    return hits / count, gains / count
