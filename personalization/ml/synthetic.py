"""Synthetic visitor histories for the demo catalog, so the demo's recommendations, personas and
propensity scores have something real to learn from (issue 7, item 6).

Each visitor follows one archetype (how often they come back, how many pages a visit has, how
long they read, how readily they add to the cart and buy, how likely they are to drop out) and
prefers one or two categories. Within a visit, the next product usually shares a tag with the
previous one, so item co-occurrence is learnable beyond the category; purchases follow cart adds,
and cart adds follow views. Churn is a per-visit chance of never coming back, so whether a
visitor returns within a week is predictable from their recency and frequency.

Everything is a pure function of (catalog, visitors, days, seed, now): the same seed gives the
same visitor ids, event ids and events. Event attrs follow personalization/events/schema.py.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tailored.core.types import Event

from .catalog import CatalogItem

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Archetype:
    """How one kind of visitor behaves; rates are per visit unless named otherwise."""

    name: str
    share: float  # of all visitors
    gap_days: float  # mean days between visits
    churn: float  # chance, after each visit, of never coming back
    views: tuple[int, int]  # product views per visit (inclusive range)
    dwell: tuple[float, float]  # seconds per product view
    scroll: tuple[int, ...]  # depths reached, drawn uniformly
    searches: float  # expected searches per visit
    cart: float  # chance each viewed product is added to the cart
    buy: float  # chance a visit with a non-empty cart ends in a purchase
    cheap: bool = False  # prefers the cheaper half of each category
    articles: float = 0.0  # expected article reads per visit


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("bargain_hunter", 0.22, 2.5, 0.10, (4, 9), (10, 40), (50, 75), 1.2, 0.35, 0.45, cheap=True),
    Archetype("researcher", 0.20, 3.0, 0.08, (6, 12), (60, 240), (75, 100), 2.5, 0.05, 0.25, articles=1.5),
    Archetype("quick_buyer", 0.15, 6.0, 0.15, (1, 3), (5, 20), (25, 50), 0.2, 0.75, 0.85),
    Archetype("window_shopper", 0.25, 5.0, 0.35, (2, 5), (8, 30), (25,), 0.3, 0.03, 0.10),
    Archetype("loyal_returner", 0.18, 1.2, 0.03, (3, 6), (20, 60), (50, 75, 100), 0.5, 0.20, 0.60),
)
SEARCH_WORDS = ("deal", "sale", "gift", "best", "review", "cheap", "new")


@dataclass(frozen=True, slots=True)
class SyntheticVisitor:
    visitor_id: str  # 32 hex characters, deterministic from the seed and the visitor's index
    archetype: str
    events: tuple[Event, ...]  # ts ascending; ids unique across all visitors of one seed


def visitor_id(seed: int, index: int) -> str:
    return hashlib.sha256(f"tailored-synthetic:{seed}:{index}".encode()).hexdigest()[:32]


def generate_histories(
    catalog: Sequence[CatalogItem],
    visitors: int = 2000,
    days: int = 28,
    seed: int = 7,
    now: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[SyntheticVisitor]:
    """`visitors` histories over the `days` days before `now`, over the in-stock items of
    `catalog` (at least one needed). `progress(n)` is told each visitor done."""
    items = [item for item in catalog if item.in_stock]
    if not items:
        raise ValueError("the catalog has no in-stock items to generate histories for")
    now = time.time() if now is None else now
    shop = _Shop.of(items)
    rng = random.Random(seed)
    weights = [a.share for a in ARCHETYPES]
    result = []
    for index in range(visitors):
        archetype = rng.choices(ARCHETYPES, weights)[0]
        writer = _Writer(f"s{seed}-{index}", random.Random(rng.getrandbits(64)), shop, archetype)
        events = writer.history(start=now - days * DAY, end=now)
        result.append(SyntheticVisitor(visitor_id(seed, index), archetype.name, tuple(events)))
        if progress is not None:
            progress(index + 1)
    return result


@dataclass(frozen=True, slots=True)
class _Shop:
    by_category: dict[str, list[CatalogItem]]
    cheap: dict[str, list[CatalogItem]]  # the cheaper half of each category

    @classmethod
    def of(cls, items: Sequence[CatalogItem]) -> _Shop:
        by_category: dict[str, list[CatalogItem]] = {}
        for item in items:
            by_category.setdefault(item.category or "other", []).append(item)
        cheap = {c: sorted(members, key=lambda i: i.price)[: max(1, len(members) // 2)] for c, members in by_category.items()}
        return cls(by_category, cheap)


class _Writer:
    """Writes one visitor's history, visit by visit."""

    def __init__(self, prefix: str, rng: random.Random, shop: _Shop, archetype: Archetype):
        self.prefix, self.rng, self.shop, self.a = prefix, rng, shop, archetype
        self.events: list[Event] = []
        categories = sorted(shop.by_category)
        self.favourites = rng.sample(categories, k=min(len(categories), rng.choice((1, 1, 2))))
        self.others = [c for c in categories if c not in self.favourites] or self.favourites

    def history(self, start: float, end: float) -> list[Event]:
        # Arrivals fill the first 80% of the period, so most visitors have a past and a future.
        at = start + self.rng.random() * 0.8 * (end - start)
        while at < end:
            at = self._visit(at)
            if self.rng.random() < self.a.churn:
                break
            at += self.rng.expovariate(1 / self.a.gap_days) * DAY + self.rng.uniform(0.5, 3) * 3600
        return [e for e in self.events if e.ts <= end]

    def _emit(self, ts: float, type: str, category: str | None = None, item: str | None = None, **attrs) -> None:
        self.events.append(Event(f"{self.prefix}-{len(self.events)}", type, round(ts, 3), category, item, None, attrs))

    def _visit(self, at: float) -> float:
        a, rng = self.a, self.rng
        category = self._category()
        self._emit(at, "page_view", category, page_type="category")
        at += rng.uniform(3, 15)
        for _ in range(_poisson(rng, a.articles)):
            self._emit(at, "page_view", category, page_type="article")
            at += rng.uniform(60, 300)
        cart: list[CatalogItem] = []
        previous: CatalogItem | None = None
        for _ in range(rng.randint(*a.views)):
            if rng.random() < a.searches / max(1, a.views[1]):
                at = self._search(at, category)
            previous = self._next_item(category, previous)
            at = self._view(at, previous)
            if rng.random() < a.cart:
                self._emit(at, "add_to_cart", previous.category, previous.id, quantity=1, price=previous.price)
                cart.append(previous)
                at += rng.uniform(5, 20)
        return self._checkout(at, cart)

    def _category(self) -> str:
        return self.rng.choice(self.favourites if self.rng.random() < 0.8 else self.others)

    def _next_item(self, category: str, previous: CatalogItem | None) -> CatalogItem:
        pool = (self.shop.cheap if self.a.cheap else self.shop.by_category)[category]
        if previous is not None and self.rng.random() < 0.6:
            # Co-viewed items share a tag with the last one: the recommender's signal.
            related = [i for i in pool if i is not previous and set(i.tags) & set(previous.tags)]
            if related:
                return self.rng.choice(related)
        return self.rng.choice(pool)

    def _view(self, at: float, item: CatalogItem) -> float:
        self._emit(at, "page_view", item.category, item.id, page_type="product")
        seconds = round(self.rng.uniform(*self.a.dwell), 1)
        at += seconds
        if self.rng.random() < 0.5:  # not every view is scrolled far enough to report a depth
            self._emit(at, "scroll_depth", item.category, depth=self.rng.choice(self.a.scroll))
        self._emit(at + 0.5, "dwell", item.category, item.id, seconds=seconds)
        if self.a.name in ("researcher", "loyal_returner") and self.rng.random() < 0.05:
            vote = "up" if item.category in self.favourites else "down"
            self._emit(at + 1, "recommendation_feedback", item.category, item.id, vote=vote)
        return at + self.rng.uniform(2, 10)

    def _search(self, at: float, category: str) -> float:
        words = [category.replace("-", " ")]
        if self.a.cheap or self.rng.random() < 0.3:
            words.insert(0, self.rng.choice(SEARCH_WORDS))
        self._emit(at, "search", query=" ".join(words))
        if self.a.cheap:
            self._emit(at + 2, "filter_change", filter="price", value="low")
        return at + self.rng.uniform(5, 20)

    def _checkout(self, at: float, cart: list[CatalogItem]) -> float:
        if not cart:
            return at
        if self.a.cheap and len(cart) > 1 and self.rng.random() < 0.4:
            dropped = cart.pop()
            self._emit(at, "remove_from_cart", dropped.category, dropped.id)
            at += self.rng.uniform(3, 10)
        if self.rng.random() < self.a.buy:
            value = round(sum(item.price for item in cart), 2)
            order = f"{self.prefix}-o{len(self.events)}"
            items = [int(item.id) for item in cart if item.id.isdigit()]
            self._emit(at, "purchase", order_id=order, value=value, items=items)
            at += self.rng.uniform(10, 30)
        return at


def _poisson(rng: random.Random, mean: float) -> int:
    """A small Poisson draw (Knuth), enough for per-visit counts."""
    if mean <= 0:
        return 0
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
