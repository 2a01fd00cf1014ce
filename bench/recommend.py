"""Top-10 recommendations for one visitor over a 50,000-item catalog (DESIGN.md budget: p99 under 2 ms).

A seeded synthetic shop: 50,000 items in 250 categories with power-law popularity, 200,000
visitors with power-law activity (about 2 million interactions: views, carts, purchases over 60
days), each visitor drawn to one or two categories. The recommender is fitted with the production
code (item-kNN and EASE over the 2,000 most popular items, blended; the settings are fixed here
instead of tuned, to keep the run short), then asked for visitors' top-10 with their real recent
histories, and with 500-item histories (`recommend_long_history_p99_ms`: only the newest
RECOMMENDATION_MAX_HISTORY distinct items are scored, everything is excluded). The baseline, in the same process, scores the same visitors by a sparse product of the
history vector with the whole neighbour matrix and a dense top-10 over the catalog: what a request
would cost without the per-item neighbour lists.

Runs standalone, no Django or Redis: `.venv/bin/python bench/recommend.py`. With `--train` it
first runs the whole training path with the default settings (time-decay choice, validation
tuning under its budget, the EASE item limit, the final fit) on the same 50,000-item shop and
prints `train_50k_s` (issue 22 item 7; about 8 minutes here).
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Summary, print_headline, progress, quiet_gc, run_timed  # noqa: E402
from tailored.ml.catalog import CatalogItem  # noqa: E402
from tailored.ml.datasets import validation_split  # noqa: E402
from tailored.ml.recommender import (  # noqa: E402
    Choice,
    Encoded,
    Recommender,
    RecommenderParams,
    choose_decay,
    ease_within_budget,
    fit,
    training_clock,
    tune,
)

SEED = 20260101
N_ITEMS = 50_000
N_CATEGORIES = 250
N_VISITORS = 200_000
MEAN_EVENTS = 10
MAX_EVENTS = 300
DAYS = 60
NOW = 1_767_225_600.0
REQUESTS = 5_000
HISTORY = 30  # recent items a profile holds (newest first)
LONG_HISTORY = 500  # a visitor with hundreds of items (issue 22 item 4: p99 at most 5 ms)


def synthetic_shop(rng: np.random.Generator) -> tuple[list[CatalogItem], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Catalog plus (visitor, item, kind code, ts) arrays of the interactions."""
    categories = rng.integers(N_CATEGORIES, size=N_ITEMS)
    popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.9
    popularity = popularity[rng.permutation(N_ITEMS)]
    catalog = [
        CatalogItem(id=str(i), title=f"item {i}", category=f"c{categories[i]}", in_stock=bool(rng.random() > 0.02))
        for i in range(N_ITEMS)
    ]
    members = [np.flatnonzero(categories == c) for c in range(N_CATEGORIES)]
    within = [popularity[m] / popularity[m].sum() for m in members]
    activity = np.minimum(rng.zipf(2.0, size=N_VISITORS) * MEAN_EVENTS // 4 + 1, MAX_EVENTS)
    visitors = np.repeat(np.arange(N_VISITORS), activity)
    items = np.empty(visitors.size, dtype=np.int64)
    favourite = rng.integers(N_CATEGORIES, size=N_VISITORS)
    in_favourite = rng.random(visitors.size) < 0.75
    anywhere = ~in_favourite
    items[anywhere] = rng.choice(N_ITEMS, size=int(anywhere.sum()), p=popularity / popularity.sum())
    for category in range(N_CATEGORIES):
        chosen = np.flatnonzero(in_favourite & (favourite[visitors] == category))
        items[chosen] = rng.choice(members[category], size=chosen.size, p=within[category])
    kinds = np.searchsorted(np.cumsum([0.85, 0.10, 0.05]), rng.random(visitors.size))
    ts = NOW - rng.random(visitors.size) * DAYS * 86400.0
    return catalog, visitors, items, kinds, ts


def encoded(visitors: np.ndarray, items: np.ndarray, kinds: np.ndarray, ts: np.ndarray) -> Encoded:
    """The interactions already indexed, as `encode` would return them: two million Interaction
    objects would cost more to build than the fit itself, and the bench measures the model."""
    names = ("view", "cart", "purchase")
    item_ids = tuple(str(i) for i in range(N_ITEMS))
    return Encoded(item_ids, visitors, items, tuple(names[k] for k in kinds.tolist()), ts, N_VISITORS)


def histories(visitors: np.ndarray, items: np.ndarray, ts: np.ndarray, rng: np.random.Generator) -> list[list[tuple[str, float]]]:
    """The newest HISTORY items of REQUESTS visitors drawn like traffic (active visitors more often)."""
    order = np.lexsort((-ts, visitors))
    starts = np.searchsorted(visitors[order], np.arange(N_VISITORS))
    ends = np.r_[starts[1:], order.size]
    chosen = visitors[rng.integers(visitors.size, size=REQUESTS)]
    result = []
    for visitor in chosen.tolist():
        rows = order[starts[visitor] : min(ends[visitor], starts[visitor] + HISTORY)]
        result.append([(str(items[r]), float(ts[r])) for r in rows.tolist()])
    return result


def long_histories(catalog: list[CatalogItem], rng: np.random.Generator) -> list[list[tuple[str, float]]]:
    """REQUESTS histories of LONG_HISTORY distinct items, newest first: three quarters from one
    favourite category (with its popular items more likely), the rest from anywhere."""
    by_category: dict[str, list[str]] = {}
    for item in catalog:
        by_category.setdefault(item.category, []).append(item.id)
    names = sorted(by_category)
    result = []
    for _ in range(REQUESTS // 5):
        own = by_category[names[int(rng.integers(len(names)))]]
        picked = list(dict.fromkeys([*rng.choice(own, size=min(len(own), LONG_HISTORY * 3 // 4), replace=False).tolist(),
                                     *rng.choice(N_ITEMS, size=LONG_HISTORY, replace=False).astype(str).tolist()]))[:LONG_HISTORY]
        stamps = np.sort(NOW - rng.random(len(picked)) * DAYS * 86400.0)[::-1]
        result.append(list(zip(rng.permutation(picked).tolist(), stamps.tolist(), strict=True)))
    return result


def brute_force(model: Recommender, by_target: sp.csr_matrix, history: list[tuple[str, float]]) -> list[int]:
    """Baseline: the history as a vector times the whole neighbour matrix (pre-transposed), then
    a dense top-10 over the catalog."""
    positions = [model.index[item] for item, _ in history if item in model.index]
    vector = np.zeros(model.n_items, dtype=np.float32)
    vector[positions] = 1.0
    scores = by_target @ vector
    scores[positions] = -np.inf
    top = np.argpartition(-scores, 10)[:10]
    return top[np.argsort(-scores[top])].tolist()


def _cpu_times(model: Recommender, requests: list[list[tuple[str, float]]]) -> list[float]:
    """The same requests timed in this thread's CPU time: what the request costs, without the
    time slices other processes take on a busy machine (the wall-clock p99 includes them)."""
    samples = []
    clock = time.thread_time_ns
    for history in requests:
        start = clock()
        model.recommend(history, 10, now=NOW)
        samples.append((clock() - start) / 1e6)
    return samples


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def train_default(shop: Encoded, catalog: list[CatalogItem]) -> tuple[float, Recommender]:
    """train_recommender's path after `encode` (two million Interaction objects would measure
    Python object creation, not training), with the default RecommenderParams."""
    started = time.perf_counter()
    clock, params = training_clock(shop.ts, RecommenderParams())
    params = ease_within_budget(shop, params, progress)
    mask, held = validation_split(shop, seed=0, max_visitors=params.validation_visitors)
    params = choose_decay(shop, mask, held, now=clock, params=params, say=progress)
    choice = tune(shop, mask, held, catalog, now=clock, params=params, say=progress)
    model = fit(shop, catalog, now=clock, params=params, choice=choice)
    return time.perf_counter() - started, model


def main() -> None:
    rng = np.random.default_rng(SEED)
    progress(f"generating a {N_ITEMS:,}-item catalog and {N_VISITORS:,} visitors (seed {SEED})")
    catalog, visitors, items, kinds, ts = synthetic_shop(rng)
    trained: dict[str, object] = {}
    if "--train" in sys.argv[1:]:
        seconds, default = train_default(encoded(visitors, items, kinds, ts), catalog)
        trained = {"train_50k_s": seconds, "train_50k_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        progress(f"trained the default model in {seconds:.0f} s: {default.metadata['variants']}, {default.metadata['fit_cost']}")
    progress(f"{visitors.size:,} interactions; RSS {rss_mb():.0f} MB")
    params = RecommenderParams(components=("knn", "ease"), ease_max_items=2000, shrinkages=(10.0,), ease_lambdas=(200.0,))
    choice = Choice(weights={"knn": 0.5, "ease": 0.5}, shrinkage=10.0, lam=200.0, validation={})
    started = time.perf_counter()
    model = fit(encoded(visitors, items, kinds, ts), catalog, now=NOW, params=params, choice=choice)
    fit_seconds = time.perf_counter() - started
    gc.collect()
    by_target = model.neighbours.T.tocsr()
    neighbour_mb = model.metadata["neighbour_bytes"] / 2**20
    progress(f"fitted in {fit_seconds:.1f} s: {model.neighbours.nnz:,} neighbour weights ({neighbour_mb:.1f} MB); RSS {rss_mb():.0f} MB")
    requests = histories(visitors, items, ts, rng)
    cycle = iter(range(10**9))

    def next_history() -> list[tuple[str, float]]:
        return requests[next(cycle) % len(requests)]

    def check(result: list) -> None:
        assert len(result) == 10, result

    for fn in (lambda h: model.recommend(h, 10, now=NOW), lambda h: brute_force(model, by_target, h)):
        run_timed(fn, 200, next_history, check)  # warm-up
    quiet_gc()
    progress(f"timing {REQUESTS:,} requests each (history of up to {HISTORY} items)")
    ours = Summary.of("recommend top-10", run_timed(lambda h: model.recommend(h, 10, now=NOW), REQUESTS, next_history, check))
    quiet_gc()
    cpu = Summary.of("recommend, CPU time", _cpu_times(model, requests))
    quiet_gc()
    baseline = Summary.of("brute-force product", run_timed(lambda h: brute_force(model, by_target, h), REQUESTS, next_history, check))
    quiet_gc()
    cold = Summary.of("popularity (no history)", run_timed(lambda h: model.recommend([], 10, now=NOW), REQUESTS, None, check))
    quiet_gc()
    longer = long_histories(catalog, rng)
    long_cycle = iter(range(10**9))
    progress(f"timing {len(longer):,} requests with {LONG_HISTORY}-item histories (scoring the newest {model.max_history})")
    run_timed(lambda h: model.recommend(h, 10, now=NOW), 100, lambda: longer[next(long_cycle) % len(longer)], check)  # warm-up
    long = Summary.of(f"recommend, {LONG_HISTORY}-item history", run_timed(
        lambda h: model.recommend(h, 10, now=NOW), len(longer), lambda: longer[next(long_cycle) % len(longer)], check,
    ))
    quiet_gc()
    long_cpu = Summary.of(f"{LONG_HISTORY}-item history, CPU time", _cpu_times(model, longer))
    for summary in (ours, cpu, baseline, cold, long, long_cpu):
        print(summary.line())
    print_headline({
        "items": N_ITEMS,
        "interactions": int(visitors.size),
        "fit_s": fit_seconds,
        "neighbour_arrays_mb": neighbour_mb,
        "rss_mb": rss_mb(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "recommend_median_ms": ours.median_ms,
        "baseline_median_ms": baseline.median_ms,
        "baseline_p99_ms": baseline.p99_ms,
        "popularity_p99_ms": cold.p99_ms,
        "speedup_vs_baseline_p99": baseline.p99_ms / ours.p99_ms,
        "load_average_1m": os.getloadavg()[0],
        "recommend_cpu_p99_ms": cpu.p99_ms,
        "recommend_p99_ms": ours.p99_ms,
        "recommend_long_history_median_ms": long.median_ms,
        "recommend_long_history_cpu_p99_ms": long_cpu.p99_ms,
        "recommend_long_history_p99_ms": long.p99_ms,
        **trained,
    })


if __name__ == "__main__":
    main()
