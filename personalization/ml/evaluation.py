"""Offline evaluation: fit each model on a data set's training interactions (tuning on a
validation split of that training data only), ask it for every test visitor through the same
Recommender.recommend() the site uses, and report accuracy, coverage, novelty and timings."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from tailored.progress import Progress

from . import metrics
from .datasets import Dataset, EvalCase
from .recommender import COMPONENTS, Recommender, RecommenderParams, train_recommender

# Model name -> the components it blends. Popularity and item-kNN are always compared.
MODELS: Mapping[str, tuple[str, ...]] = {
    "popularity": (),
    "item-knn": ("knn",),
    "content": ("content",),
    "ease": ("ease",),
    "als": ("als",),
    "rp3beta": ("rp3",),
    "hybrid": COMPONENTS,
}
DEFAULT_MODEL = "hybrid"  # what RecommenderParams() fits: marked * in the tables
BASELINES = ("popularity", "item-knn")
LIST_LENGTH = 20


@dataclass(frozen=True)
class ModelResult:
    model: str
    hr_at_10: float
    hr_at_20: float
    recall_at_10: float
    recall_at_20: float
    ndcg_at_10: float
    coverage: float
    novelty: float
    fit_seconds: float
    score_median_ms: float
    score_p99_ms: float
    cases: int
    chosen: Mapping[str, object]

    def as_dict(self) -> dict[str, object]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def dataset_params(dataset: Dataset, base: RecommenderParams) -> RecommenderParams:
    """The same defaults on every data set: no switch by name. Training turns decay off by itself
    when the data has no times (MSWeb) or when validation ranks better without (MovieLens)."""
    return base


def evaluate(
    dataset: Dataset,
    models: Sequence[str],
    *,
    seed: int = 0,
    params: RecommenderParams | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ModelResult]:
    """Every requested model (popularity and item-kNN always included) on one data set."""
    say = progress or (lambda message: None)
    base = dataset_params(dataset, params or RecommenderParams())
    wanted = [*BASELINES, *(name for name in models if name not in BASELINES)]
    popularity = Counter(item for item, _ in {(e.item, e.visitor) for e in dataset.train if e.kind != "down"})
    n_visitors = len({event.visitor for event in dataset.train})
    results = []
    started_all = time.perf_counter()
    for number, name in enumerate(wanted, start=1):
        say(f"{dataset.name}: model {number} of {len(wanted)}: fitting {name}")
        started = time.perf_counter()
        model = train_recommender(
            dataset.train, dataset.catalog, now=dataset.now, seed=seed,
            params=replace(base, components=MODELS[name]), progress=lambda m: say(f"  {m}"),
        )
        fit_seconds = time.perf_counter() - started
        say(f"{dataset.name}: scoring {name} for {len(dataset.cases)} visitors")
        results.append(score(name, model, dataset, popularity, n_visitors, fit_seconds, Progress(f"scoring {name}", len(dataset.cases), say)))
        left = (time.perf_counter() - started_all) / number * (len(wanted) - number)
        say(f"{dataset.name}: {name} HR@10 {results[-1].hr_at_10:.4f}  NDCG@10 {results[-1].ndcg_at_10:.4f}"
            + (f"; about {left:.0f} s left for {len(wanted) - number} more" if number < len(wanted) else ""))
    return results


def score(
    name: str, model: Recommender, dataset: Dataset, popularity: Mapping[str, int], n_visitors: int, fit_seconds: float,
    progress: Callable[[int], None] = lambda done: None,
) -> ModelResult:
    """Ask the model for each test visitor's top LIST_LENGTH, timing each request."""
    lists, timings = [], []
    clock = time.perf_counter_ns
    for done, case in enumerate(dataset.cases, start=1):
        start = clock()
        ranked = model.recommend(case.history, LIST_LENGTH, now=case.now)
        timings.append((clock() - start) / 1e6)
        lists.append([item for item, _ in ranked])
        progress(done)
    cases = dataset.cases
    assert_nothing_seen(name, lists, cases)

    def mean(metric, k: int) -> float:
        return statistics.fmean(metric(ranked, case.held, k) for ranked, case in zip(lists, cases, strict=True)) if cases else 0.0

    top10 = [ranked[:10] for ranked in lists]
    return ModelResult(
        model=name,
        hr_at_10=mean(metrics.hit_rate, 10),
        hr_at_20=mean(metrics.hit_rate, 20),
        recall_at_10=mean(metrics.recall, 10),
        recall_at_20=mean(metrics.recall, 20),
        ndcg_at_10=mean(metrics.ndcg, 10),
        coverage=metrics.coverage(top10, len(dataset.catalog)),
        novelty=metrics.novelty(top10, popularity, n_visitors),
        fit_seconds=fit_seconds,
        score_median_ms=statistics.median(timings) if timings else 0.0,
        score_p99_ms=_p99(timings),
        cases=len(cases),
        chosen={key: model.metadata.get(key) for key in ("weights", "shrinkage", "ease_lambda", "validation")},
    )


class SeenItemRecommended(AssertionError):
    """A model recommended an item from the visitor's own history: a broken protocol or model."""


def assert_nothing_seen(name: str, lists: Sequence[Sequence[str]], cases: Sequence[EvalCase]) -> None:
    """The protocol's promise (issue 22): no recommended item is in the visitor's training history."""
    offending = [case.visitor for ranked, case in zip(lists, cases, strict=True) if set(ranked) & {item for item, _ in case.history}]
    if offending:
        raise SeenItemRecommended(f"{name} recommended items from their own history to {len(offending)} visitors, e.g. {offending[:3]}")


def _p99(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * 0.99
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


TABLE_COLUMNS = (
    ("model", "model", "{:<11}"),
    ("HR@10", "hr_at_10", "{:>6.4f}"),
    ("HR@20", "hr_at_20", "{:>6.4f}"),
    ("R@10", "recall_at_10", "{:>6.4f}"),
    ("R@20", "recall_at_20", "{:>6.4f}"),
    ("NDCG@10", "ndcg_at_10", "{:>7.4f}"),
    ("cover", "coverage", "{:>6.4f}"),
    ("novelty", "novelty", "{:>7.2f}"),
    ("fit s", "fit_seconds", "{:>6.1f}"),
    ("med ms", "score_median_ms", "{:>7.3f}"),
    ("p99 ms", "score_p99_ms", "{:>7.3f}"),
)


def format_table(dataset: Dataset, results: Sequence[ModelResult]) -> str:
    """A plain-text table, one row per model."""
    widths = [max(len(title), len(fmt.format(getattr(results[0], field)))) if results else len(title) for title, field, fmt in TABLE_COLUMNS]
    header = "  ".join(title.rjust(width) if i else title.ljust(width) for i, ((title, _, _), width) in enumerate(zip(TABLE_COLUMNS, widths, strict=True)))
    lines = [f"{dataset.name} ({dataset.protocol}; {len(dataset.cases)} test visitors, {len(dataset.catalog)} items)", header]
    for result in results:
        cells = [fmt.format(getattr(result, field)).rjust(width) if i else fmt.format(getattr(result, field)).ljust(width) for i, ((_, field, fmt), width) in enumerate(zip(TABLE_COLUMNS, widths, strict=True))]
        if result.model == DEFAULT_MODEL:  # the name column is padded: the mark takes a space
            cells[0] = (result.model + "*").ljust(widths[0])
        lines.append("  ".join(cells))
    if any(result.model == DEFAULT_MODEL for result in results):
        lines.append(f"* {DEFAULT_MODEL}: the default configuration (RecommenderParams())")
    return "\n".join(lines)
