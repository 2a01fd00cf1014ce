"""Offline data sets and protocols: MSWeb, MovieLens (ml-latest-small), the demo shop; leave-last-
out and time splits; the validation split carved from training data for tuning.

File formats: see the README beside the data (`<BASE_DIR>/../shared/data/README.md` on the
development machine). The data files are read where they are, never copied into the project.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .catalog import CatalogItem
from .recommender import Interaction

if TYPE_CHECKING:
    from .recommender import Encoded

MSWEB_TRAIN = "msweb/anonymous-msweb.data"
MSWEB_TEST = "msweb/anonymous-msweb.test"
MOVIELENS_RATINGS = "ml-latest-small/ratings.csv"
MOVIELENS_MOVIES = "ml-latest-small/movies.csv"
MOVIELENS_TAGS = "ml-latest-small/tags.csv"


class MissingDataError(FileNotFoundError):
    """A data set's files are not where they were looked for."""


@dataclass(frozen=True)
class EvalCase:
    """One test visitor: what they did (newest first), what was hidden, and the time of asking."""

    visitor: str
    history: tuple[tuple[str, float], ...]
    held: frozenset[str]
    now: float


@dataclass(frozen=True)
class Dataset:
    name: str
    protocol: str
    catalog: tuple[CatalogItem, ...]
    train: tuple[Interaction, ...]
    cases: tuple[EvalCase, ...]
    now: float  # the training cut-off: time decay and trending are measured from here


# -- splits ------------------------------------------------------------------------------------


def validation_split(encoded: Encoded, *, seed: int, max_visitors: int) -> tuple[np.ndarray, dict[int, int]]:
    """Hold out, for up to `max_visitors` visitors (and at most half of those eligible) with two or more distinct positive items
    (chosen with the seed), the item of their latest positive event (ties: seeded). Returns the
    mask of events to fit on (every event on a held item is removed) and {visitor: held item}."""
    rng = np.random.default_rng(seed)
    positive = np.fromiter((kind != "down" for kind in encoded.kinds), dtype=bool, count=len(encoded.kinds))
    order = np.lexsort((rng.random(len(encoded.ts)), encoded.ts, encoded.visitors))
    order = order[positive[order]]
    visitors, items = encoded.visitors[order], encoded.items[order]
    last = np.flatnonzero(np.r_[visitors[1:] != visitors[:-1], True]) if len(order) else np.empty(0, dtype=np.int64)
    distinct = np.unique(np.stack([visitors, items]), axis=1)[0] if len(order) else np.empty(0, dtype=np.int64)
    eligible_visitors = np.flatnonzero(np.bincount(distinct, minlength=encoded.n_visitors) >= 2)
    held_by_visitor = {int(visitors[i]): int(items[i]) for i in last}
    eligible = [v for v in eligible_visitors.tolist() if v in held_by_visitor]
    # At most half of them: holding out every visitor's latest item can leave no two items seen
    # together in what is fitted (a shop of two-item visits), and tuning would pick blindly.
    max_visitors = min(max_visitors, max(1, len(eligible) // 2))
    if len(eligible) > max_visitors:
        eligible = sorted(rng.choice(eligible, size=max_visitors, replace=False).tolist())
    held = {visitor: held_by_visitor[visitor] for visitor in eligible}
    keys = encoded.visitors * len(encoded.item_ids) + encoded.items
    hidden = np.array([v * len(encoded.item_ids) + i for v, i in held.items()], dtype=np.int64)
    return ~np.isin(keys, hidden), held


def leave_last_out(interactions: Sequence[Interaction], seed: int) -> tuple[list[Interaction], list[EvalCase]]:
    """Per visitor with two or more interactions, hide the chronologically last one (ties broken
    with the seed); train on everything else."""
    rng = np.random.default_rng(seed)
    tie = rng.random(len(interactions))
    by_visitor: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for position, event in enumerate(interactions):
        by_visitor[event.visitor].append((event.ts, tie[position], position))
    hidden: set[int] = set()
    cases = []
    for visitor, events in by_visitor.items():
        if len({interactions[p].item for _, _, p in events}) < 2:
            continue
        events.sort()
        last = interactions[events[-1][2]]
        history = [(interactions[p].item, ts) for ts, _, p in reversed(events[:-1]) if interactions[p].item != last.item]
        if not history:
            continue
        hidden.update(p for _, _, p in events if interactions[p].item == last.item)
        cases.append(EvalCase(visitor, tuple(history), frozenset({last.item}), history[0][1]))
    train = [event for position, event in enumerate(interactions) if position not in hidden]
    return train, cases


def time_split(interactions: Sequence[Interaction], fraction: float = 0.8) -> tuple[list[Interaction], list[EvalCase], float]:
    """Train on events before the `fraction` quantile of time; each visitor with history before it
    is asked at the cut-off, and every item they first touch after it counts as relevant."""
    cutoff = float(np.quantile([event.ts for event in interactions], fraction)) if interactions else 0.0
    train = [event for event in interactions if event.ts < cutoff]
    history: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for event in sorted(train, key=lambda e: -e.ts):
        history[event.visitor].append((event.item, event.ts))
    later: dict[str, set[str]] = defaultdict(set)
    for event in interactions:
        if event.ts >= cutoff and event.kind != "down":
            later[event.visitor].add(event.item)
    cases = []
    for visitor in sorted(history):
        seen = {item for item, _ in history[visitor]}
        relevant = later.get(visitor, set()) - seen
        if relevant:
            cases.append(EvalCase(visitor, tuple(history[visitor]), frozenset(relevant), cutoff))
    return train, cases, cutoff


def split(interactions: Sequence[Interaction], protocol: str, seed: int) -> tuple[list[Interaction], list[EvalCase], float]:
    if protocol == "time":
        return time_split(interactions)
    train, cases = leave_last_out(interactions, seed)
    return train, cases, max((event.ts for event in train), default=0.0)


# -- loaders -----------------------------------------------------------------------------------


def _require(data_dir: Path, *names: str) -> list[Path]:
    paths = [data_dir / name for name in names]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise MissingDataError(f"missing data file(s): {', '.join(missing)}")
    return paths


def read_msweb(path: Path) -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """Areas {id: (title, url)} and visits {visitor: [area, ...]} of one MSWeb file."""
    areas: dict[str, tuple[str, str]] = {}
    visits: dict[str, list[str]] = {}
    current: list[str] | None = None
    with path.open(newline="", encoding="latin-1") as handle:
        for row in csv.reader(handle):
            if not row:
                continue
            if row[0] == "A" and len(row) >= 5:
                areas[row[1]] = (row[3], row[4])
            elif row[0] == "C" and len(row) >= 3:
                current = visits.setdefault(row[2], [])
            elif row[0] == "V" and current is not None and row[1] not in current:
                current.append(row[1])
    return areas, visits


def load_msweb(data_dir: Path, seed: int = 0, protocol: str = "hide-one") -> Dataset:
    """Fit on the training file; per test visitor with 2+ visits hide one visit (seeded; with
    protocol "last", the last one the file lists, its only order) and rank all areas except the
    visitor's other visits. MSWeb has no times: every event is at 0."""
    train_path, test_path = _require(data_dir, MSWEB_TRAIN, MSWEB_TEST)
    areas, train_visits = read_msweb(train_path)
    test_areas, test_visits = read_msweb(test_path)
    areas = {**test_areas, **areas}
    catalog = tuple(
        CatalogItem(id=area, title=title, category="", description=_words(url))
        for area, (title, url) in sorted(areas.items(), key=lambda entry: int(entry[0]))
    )
    train = tuple(Interaction(f"c{visitor}", area, "view", 0.0) for visitor, visits in train_visits.items() for area in visits)
    rng = np.random.default_rng(seed)
    cases = []
    for visitor, visits in test_visits.items():
        if len(visits) < 2:
            continue
        hidden = visits[-1] if protocol == "last" else visits[int(rng.integers(len(visits)))]
        history = tuple((area, 0.0) for area in visits if area != hidden)
        cases.append(EvalCase(f"t{visitor}", history, frozenset({hidden}), 0.0))
    return Dataset("msweb", "last" if protocol == "last" else "hide-one", catalog, train, tuple(cases), 0.0)


def _words(url: str) -> str:
    return " ".join(re.split(r"[/_\-.]+", url)).strip()


def load_movielens(data_dir: Path, protocol: str = "loo", seed: int = 0) -> Dataset:
    """Every rating is an interaction (implicit feedback). Catalog: title, genres (the first is
    the category), and the free-text tags users gave."""
    ratings_path, movies_path, tags_path = _require(data_dir, MOVIELENS_RATINGS, MOVIELENS_MOVIES, MOVIELENS_TAGS)
    with ratings_path.open(newline="", encoding="utf-8") as handle:
        interactions = [
            Interaction(row["userId"], row["movieId"], "view", float(row["timestamp"])) for row in csv.DictReader(handle)
        ]
    tags: dict[str, set[str]] = defaultdict(set)
    with tags_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            tags[row["movieId"]].add(row["tag"].strip().lower())
    with movies_path.open(newline="", encoding="utf-8") as handle:
        catalog = tuple(_movie(row, tags.get(row["movieId"], set())) for row in csv.DictReader(handle))
    train, cases, now = split(interactions, protocol, seed)
    return Dataset("movielens", protocol, catalog, tuple(train), tuple(cases), now)


def _movie(row: Mapping[str, str], tags: Iterable[str]) -> CatalogItem:
    genres = [genre for genre in row["genres"].split("|") if genre and genre != "(no genres listed)"]
    category = re.sub(r"[^a-z0-9]+", "-", genres[0].lower()).strip("-") if genres else ""
    return CatalogItem(id=row["movieId"], title=row["title"], category=category, tags=tuple(genres) + tuple(sorted(tags)))


# Synthetic demo histories end at this fixed time, so every run sees the same events.
DEMO_NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DEMO_VISITORS = 2000


def load_demo(protocol: str = "loo", seed: int = 0, visitors: int = DEMO_VISITORS) -> Dataset:
    """The demo shop's products (needs Django and the demo data) with synthetic visitor histories
    from tailored.ml.synthetic, mapped to interactions like stored events are."""
    from .catalog import demo_catalog
    from .recommender import interactions_from_events
    from .synthetic import generate_histories

    catalog = tuple(demo_catalog())
    if not catalog:
        raise MissingDataError("the demo catalog is empty: run `python manage.py load_demo` first")
    histories = generate_histories(catalog, visitors=visitors, seed=seed, now=DEMO_NOW)
    rows = ((h.visitor_id, e.type, e.item, e.ts, e.attrs) for h in histories for e in h.events)
    interactions = sorted(interactions_from_events(rows), key=lambda e: (e.ts, e.visitor, e.item, e.kind))
    train, cases, now = split(interactions, protocol, seed)
    return Dataset("demo", protocol, catalog, tuple(train), tuple(cases), now)


# -- cold start (issue 22 item 5) --------------------------------------------------------------

COLD_START_LENGTHS = (1, 2, 3)
COLD_START_SHARE = 1 / 3  # MovieLens: the share of visitors held out entirely as new visitors


@dataclass(frozen=True)
class ColdStartData:
    """Visitors the model never saw, asked after their first 1, 2 and 3 items."""

    name: str
    protocol: str
    catalog: tuple[CatalogItem, ...]
    train: tuple[Interaction, ...]
    cases: Mapping[int, tuple[EvalCase, ...]]  # history length -> cases
    now: float


def load_cold_start(name: str, data_dir: Path, seed: int = 0) -> ColdStartData:
    """MSWeb: fit on the training file; each test-file visitor with more than n visits is asked
    after the first n the file lists, one of the rest (seeded) hidden. MovieLens: a seeded third
    of the visitors is removed from training; each is asked after their first n rated films (by
    time, ties seeded) for the next one."""
    rng = np.random.default_rng(seed)
    if name == "msweb":
        full = load_msweb(data_dir, seed=seed)
        _, visits = read_msweb(data_dir / MSWEB_TEST)
        sequences = {f"t{visitor}": [(area, 0.0) for area in areas] for visitor, areas in visits.items()}
        return ColdStartData("msweb", "first-n, one later visit hidden", full.catalog, full.train, _cold_cases(sequences, rng, random_target=True), 0.0)
    ratings_path, _, _ = _require(data_dir, MOVIELENS_RATINGS, MOVIELENS_MOVIES, MOVIELENS_TAGS)
    catalog = load_movielens(data_dir, protocol="loo", seed=seed).catalog
    with ratings_path.open(newline="", encoding="utf-8") as handle:
        interactions = [Interaction(row["userId"], row["movieId"], "view", float(row["timestamp"])) for row in csv.DictReader(handle)]
    visitors = sorted({event.visitor for event in interactions})
    held = set(rng.choice(visitors, size=int(len(visitors) * COLD_START_SHARE), replace=False).tolist())
    train = tuple(event for event in interactions if event.visitor not in held)
    tie = rng.random(len(interactions))
    by_visitor: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for position, event in enumerate(interactions):
        if event.visitor in held:
            by_visitor[event.visitor].append((event.ts, tie[position], event.item))
    sequences = {visitor: [(item, ts) for ts, _, item in sorted(events)] for visitor, events in by_visitor.items()}
    now = max((event.ts for event in train), default=0.0)
    return ColdStartData("movielens", "new visitors, first n films, the next one hidden", catalog, train, _cold_cases(sequences, rng, random_target=False), now)


def _cold_cases(sequences: Mapping[str, Sequence[tuple[str, float]]], rng: np.random.Generator, *, random_target: bool) -> dict[int, tuple[EvalCase, ...]]:
    cases: dict[int, list[EvalCase]] = {length: [] for length in COLD_START_LENGTHS}
    for visitor in sorted(sequences):
        firsts: dict[str, float] = {}
        for item, ts in sequences[visitor]:
            firsts.setdefault(item, ts)
        items = list(firsts)
        for length in COLD_START_LENGTHS:
            if len(items) <= length:
                continue
            later = items[length:]
            target = later[int(rng.integers(len(later)))] if random_target else later[0]
            history = tuple((item, firsts[item]) for item in reversed(items[:length]))
            cases[length].append(EvalCase(visitor, history, frozenset({target}), history[0][1]))
    return {length: tuple(found) for length, found in cases.items()}
