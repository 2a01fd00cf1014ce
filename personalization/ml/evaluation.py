"""Offline evaluation: fit each model on a data set's training interactions (tuning on a
validation split of that training data only), ask it for every test visitor through the same
Recommender.recommend() the site uses, and report accuracy, coverage, novelty and timings."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from tailored.progress import Progress

from . import metrics
from .datasets import ColdStartData, Dataset, EvalCase
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
    # Each question's HR@10 and NDCG@10, in the order of the data set's cases (for `differences`).
    per_case: Mapping[str, tuple[float, ...]] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, object]:
        figures = {key: value for key, value in asdict(self).items() if key != "per_case"}
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in figures.items()}


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
    negatives: int = 0,
) -> list[ModelResult]:
    """Every requested model (popularity and item-kNN always included) on one data set.
    `negatives` > 0: the accuracy figures rank each held-out item against that many items sampled
    for its question (the same for every model; see `sampled_lists`), not the whole catalog."""
    say = progress or (lambda message: None)
    sampled = sample_negatives(dataset, negatives, seed) if negatives > 0 else None
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
            # Only the default serves short histories with its blend: the single models and
            # popularity are the plain baselines it is compared with.
            params=replace(base, components=MODELS[name], cold_start=base.cold_start and name == DEFAULT_MODEL),
            progress=lambda m: say(f"  {m}"),
        )
        fit_seconds = time.perf_counter() - started
        say(f"{dataset.name}: scoring {name} for {len(dataset.cases)} visitors")
        ranking = Progress(f"ranking {name} against {negatives} sampled items", len(dataset.cases), say)  # says nothing unless called
        results.append(score(name, model, dataset, popularity, n_visitors, fit_seconds, Progress(f"scoring {name}", len(dataset.cases), say), sampled, ranking))
        left = (time.perf_counter() - started_all) / number * (len(wanted) - number)
        say(f"{dataset.name}: {name} HR@10 {results[-1].hr_at_10:.4f}  NDCG@10 {results[-1].ndcg_at_10:.4f}"
            + (f"; about {left:.0f} s left for {len(wanted) - number} more" if number < len(wanted) else ""))
    return results


def score(
    name: str, model: Recommender, dataset: Dataset, popularity: Mapping[str, int], n_visitors: int, fit_seconds: float,
    progress: Callable[[int], None] = lambda done: None,
    negatives: Sequence[tuple[str, ...]] | None = None,
    ranking_progress: Callable[[int], None] = lambda done: None,
) -> ModelResult:
    """Ask the model for each test visitor's top LIST_LENGTH, timing each request. With
    `negatives` (one tuple per case), the accuracy figures are over those items and the held-out
    one, in the order of the model's whole ranking (asked once more, untimed)."""
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
    top10 = [ranked[:10] for ranked in lists]
    if negatives is not None:
        lists = sampled_lists(model, cases, negatives, len(dataset.catalog), ranking_progress)

    def mean(metric, k: int) -> float:
        return statistics.fmean(metric(ranked, case.held, k) for ranked, case in zip(lists, cases, strict=True)) if cases else 0.0

    per_case = {
        "hr@10": tuple(metrics.hit_rate(ranked, case.held, 10) for ranked, case in zip(lists, cases, strict=True)),
        "ndcg@10": tuple(metrics.ndcg(ranked, case.held, 10) for ranked, case in zip(lists, cases, strict=True)),
    }
    return ModelResult(
        model=name,
        hr_at_10=statistics.fmean(per_case["hr@10"]) if cases else 0.0,
        hr_at_20=mean(metrics.hit_rate, 20),
        recall_at_10=mean(metrics.recall, 10),
        recall_at_20=mean(metrics.recall, 20),
        ndcg_at_10=statistics.fmean(per_case["ndcg@10"]) if cases else 0.0,
        coverage=metrics.coverage(top10, len(dataset.catalog)),
        novelty=metrics.novelty(top10, popularity, n_visitors),
        fit_seconds=fit_seconds,
        score_median_ms=statistics.median(timings) if timings else 0.0,
        score_p99_ms=_p99(timings),
        cases=len(cases),
        chosen={key: model.metadata.get(key) for key in ("weights", "shrinkage", "ease_lambda", "validation")},
        per_case=per_case,
    )


def sample_negatives(dataset: Dataset, count: int, seed: int) -> list[tuple[str, ...]]:
    """For each question, `count` catalog items drawn uniformly without replacement from those
    the visitor has not touched (their history and the held-out items excluded): the sampled
    protocol of the literature (He et al. 2017's leave-one-out with 99 negatives), which papers'
    tables for MovieLens report. Seeded, so every model is asked about the same items."""
    items = np.array(list(dict.fromkeys(item.id for item in dataset.catalog)), dtype=object)
    index = {item: position for position, item in enumerate(items)}
    rng = np.random.default_rng(seed)
    drawn = []
    for case in dataset.cases:
        untouched = np.ones(len(items), dtype=bool)
        untouched[[index[item] for item in ({item for item, _ in case.history} | case.held) if item in index]] = False
        pool = np.flatnonzero(untouched)
        drawn.append(tuple(items[rng.choice(pool, size=min(count, pool.size), replace=False)]))
    return drawn


def sampled_lists(
    model: Recommender, cases: Sequence[EvalCase], negatives: Sequence[tuple[str, ...]], n_items: int,
    progress: Callable[[int], None] = lambda done: None,
) -> list[list[str]]:
    """Each question's held-out and sampled items in the order of the model's whole ranking
    (recommend() with k = every item); an item it does not rank comes after every ranked one,
    and a held-out item it does not rank after the sampled ones it does not rank either: ties
    never count in the model's favour."""
    lists = []
    for case, sampled in zip(cases, negatives, strict=True):
        order = {item: rank for rank, (item, _) in enumerate(model.recommend(case.history, n_items, now=case.now))}
        unranked = n_items + 1
        candidates = [(order.get(item, unranked), 0, item) for item in sampled]
        candidates += [(order.get(item, unranked), 1, item) for item in sorted(case.held)]
        lists.append([item for _, _, item in sorted(candidates)])
        progress(len(lists))
    return lists


BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Difference:
    """The default's figure minus another model's on the same questions, with a 95% interval."""

    model: str
    metric: str
    mean: float
    low: float
    high: float

    def as_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "mean": round(self.mean, 4), "low": round(self.low, 4), "high": round(self.high, 4)}


def differences(results: Sequence[ModelResult], cases: Sequence[EvalCase], seed: int = 0) -> list[Difference]:
    """The default minus each other model, NDCG@10 and HR@10, each with a 95% paired bootstrap
    interval: the test visitors resampled with replacement (BOOTSTRAP_RESAMPLES times, seeded),
    all of a visitor's questions together, since the time split asks one visitor several and
    their answers are not independent. Whether a gap between two rows is more than which
    visitors happened to be asked: an interval across 0 says the data cannot tell them apart."""
    default = next((result for result in results if result.model == DEFAULT_MODEL and result.per_case), None)
    if default is None or not cases:
        return []
    visitors = {visitor: n for n, visitor in enumerate(dict.fromkeys(case.visitor for case in cases))}
    owner = np.fromiter((visitors[case.visitor] for case in cases), dtype=np.int64, count=len(cases))
    questions = np.bincount(owner, minlength=len(visitors)).astype(np.float64)
    picks = np.random.default_rng(seed).integers(0, len(visitors), size=(BOOTSTRAP_RESAMPLES, len(visitors)), dtype=np.int32)
    asked = questions[picks].sum(axis=1)
    found = []
    for other in results:
        if other is default or not other.per_case:
            continue
        for metric in ("ndcg@10", "hr@10"):
            gap = np.asarray(default.per_case[metric]) - np.asarray(other.per_case[metric])
            per_visitor = np.bincount(owner, weights=gap, minlength=len(visitors))
            means = per_visitor[picks].sum(axis=1) / asked
            low, high = np.percentile(means, [2.5, 97.5])
            found.append(Difference(other.model, metric, float(gap.mean()), float(low), float(high)))
    return found


def format_differences(found: Sequence[Difference]) -> str:
    """One line per model: the default's NDCG@10 and HR@10 minus its, with their intervals."""
    if not found:
        return ""
    lines = [f"{DEFAULT_MODEL}* minus each model on the same questions (95% interval, {BOOTSTRAP_RESAMPLES:,} resamples of the test visitors):"]
    by_model: dict[str, list[Difference]] = {}
    for difference in found:
        by_model.setdefault(difference.model, []).append(difference)
    for model, pair in by_model.items():
        parts = [f"{d.metric.upper()} {d.mean:+.4f} ({d.low:+.4f} to {d.high:+.4f})" for d in pair]
        lines.append(f"  {model:<11}  " + "   ".join(parts))
    return "\n".join(lines)


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


def count_test_visitors(cases: Sequence[EvalCase]) -> int:
    return len({case.visitor for case in cases})


def describe_cases(cases: Sequence[EvalCase]) -> str:
    """"671 test visitors", or with several questions each (the time split) "300 test visitors,
    2,990 questions"."""
    visitors = count_test_visitors(cases)
    return f"{visitors:,} test visitors" + (f", {len(cases):,} questions" if len(cases) != visitors else "")


def format_table(dataset: Dataset, results: Sequence[ModelResult], negatives: int = 0) -> str:
    """A plain-text table, one row per model."""
    widths = [max(len(title), len(fmt.format(getattr(results[0], field)))) if results else len(title) for title, field, fmt in TABLE_COLUMNS]
    header = "  ".join(title.rjust(width) if i else title.ljust(width) for i, ((title, _, _), width) in enumerate(zip(TABLE_COLUMNS, widths, strict=True)))
    ranked = f"; each held-out item ranked against {negatives} sampled items" if negatives > 0 else ""
    lines = [f"{dataset.name} ({dataset.protocol}; {describe_cases(dataset.cases)}, {len(dataset.catalog)} items{ranked})", header]
    for result in results:
        cells = [fmt.format(getattr(result, field)).rjust(width) if i else fmt.format(getattr(result, field)).ljust(width) for i, ((_, field, fmt), width) in enumerate(zip(TABLE_COLUMNS, widths, strict=True))]
        if result.model == DEFAULT_MODEL:  # the name column is padded: the mark takes a space
            cells[0] = (result.model + "*").ljust(widths[0])
        lines.append("  ".join(cells))
    if any(result.model == DEFAULT_MODEL for result in results):
        lines.append(f"* {DEFAULT_MODEL}: the default configuration (RecommenderParams())")
    return "\n".join(lines)


# -- cold start (issue 22 item 5) --------------------------------------------------------------

# Row name -> (components, short-history blend on). "hybrid (warm path)" is the default model with
# its short-history blend switched off: what served a one-item visitor before the blend.
COLD_START_MODELS: Mapping[str, tuple[tuple[str, ...], bool]] = {
    "popularity": ((), False),
    "item-knn": (("knn",), False),
    "ease": (("ease",), False),
    "cold-blend": ((), True),  # content, category and trending only: no collaborative table
    "hybrid-warm": (COMPONENTS, True),
    "hybrid": (COMPONENTS, True),
}


@dataclass(frozen=True)
class ColdStartResult:
    model: str
    figures: Mapping[int, tuple[float, float]]  # history length -> (HR@10, NDCG@10)
    fit_seconds: float
    weights: Mapping[str, object]


def evaluate_cold_start(
    data: ColdStartData, *, seed: int = 0, params: RecommenderParams | None = None, progress: Callable[[str], None] | None = None,
) -> list[ColdStartResult]:
    """Every cold-start model on visitors training never saw, asked after 1, 2 and 3 items,
    through Recommender.recommend() (the serving path) with the no-seen-item check."""
    say = progress or (lambda message: None)
    base = params or RecommenderParams()
    results: list[ColdStartResult] = []
    fitted: dict[tuple[tuple[str, ...], bool], tuple[Recommender, float]] = {}
    for name, (components, cold) in COLD_START_MODELS.items():
        key = (components, cold)
        if key not in fitted:
            say(f"{data.name} cold start: fitting {name}")
            started = time.perf_counter()
            model = train_recommender(
                data.train, data.catalog, now=data.now, seed=seed,
                params=replace(base, components=components, cold_start=cold), progress=lambda m: say(f"  {m}"),
            )
            fitted[key] = (model, time.perf_counter() - started)
        model, seconds = fitted[key]
        if name == "hybrid-warm":
            model = replace(model, cold_start=None)
        figures = {length: _cold_figures(name, model, cases) for length, cases in data.cases.items()}
        short = model.metadata.get("short_history") if model.cold_start is not None else None
        results.append(ColdStartResult(name, figures, seconds, (short or {}).get("weights", {})))
        say(f"{data.name} cold start: {name} " + "  ".join(f"{n}: {hr:.4f} / {nd:.4f}" for n, (hr, nd) in figures.items()))
    return results


def _cold_figures(name: str, model: Recommender, cases: Sequence[EvalCase]) -> tuple[float, float]:
    lists = [[item for item, _ in model.recommend(case.history, 10, now=case.now)] for case in cases]
    assert_nothing_seen(name, lists, cases)
    if not cases:
        return 0.0, 0.0
    hr = statistics.fmean(metrics.hit_rate(ranked, case.held, 10) for ranked, case in zip(lists, cases, strict=True))
    ndcg = statistics.fmean(metrics.ndcg(ranked, case.held, 10) for ranked, case in zip(lists, cases, strict=True))
    return hr, ndcg


def format_cold_start(data: ColdStartData, results: Sequence[ColdStartResult]) -> str:
    """One row per model: HR@10 / NDCG@10 at 1, 2 and 3 items, and the fit time."""
    lengths = sorted(data.cases)
    lines = [
        f"{data.name} cold start ({data.protocol}; " + ", ".join(f"{len(data.cases[n])} visitors at {n}" for n in lengths) + f"; {len(data.catalog)} items)",
        f"{'model':<12}" + "".join(f"  {f'HR@10 n={n}':>10}  {f'NDCG n={n}':>9}" for n in lengths) + "   fit s",
    ]
    for result in results:
        label = result.model + ("*" if result.model == DEFAULT_MODEL else "")
        cells = "".join(f"  {result.figures[n][0]:>10.4f}  {result.figures[n][1]:>9.4f}" for n in lengths)
        lines.append(f"{label:<12}{cells}  {result.fit_seconds:>6.1f}")
    lines.append(f"* {DEFAULT_MODEL}: the default configuration; hybrid-warm: the same model without its short-history blend")
    for result in results:
        if result.weights:
            lines.append(f"  {result.model} short-history weights: " + "; ".join(
                f"n={n}: " + ", ".join(f"{s} {w:.2f}" for s, w in weights.items() if w) for n, weights in result.weights.items()))
    return "\n".join(lines)
