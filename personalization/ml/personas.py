"""Personas (issue 7, item 3): KMeans over standardized behavioural features, k chosen by
silhouette, each cluster labelled from the features that set it apart.

Counts and money are heavy-tailed, so features are log1p-transformed before standardizing: one
visitor with 400 page views should not get a cluster of their own. The label comes from the
cluster centre's standardized values (z-scores): a small set of named patterns ("bargain hunter":
many cart adds, low spend per purchase...) is scored against every centre and the clusters get
the best-fitting distinct names; a centre no pattern fits is named after its strongest feature.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .features import BY_NAME, PERSONA_FEATURES

K_RANGE = (3, 10)
MIN_PROFILES = 50
SILHOUETTE_SAMPLE = 3000


@dataclass(frozen=True, slots=True)
class Persona:
    slug: str  # stable across retrains that find the same pattern; rules use it
    name: str
    description: str  # the defining features, for editors
    size: int  # training profiles in the cluster


@dataclass
class PersonaModel:
    """What the registry stores: the scaler and KMeans, and each cluster's persona."""

    scaler: StandardScaler
    kmeans: KMeans
    personas: list[Persona]
    feature_names: tuple[str, ...]
    silhouette: float
    silhouettes: dict[int, float] = field(default_factory=dict)  # k -> score
    # The training feature vectors and their clusters: the persona -> rule tree learns from them.
    rows: np.ndarray = field(default_factory=lambda: np.zeros((0, len(PERSONA_FEATURES))))
    clusters: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    def slug_of(self, cluster: int) -> str:
        return self.personas[cluster].slug

    def persona(self, slug: str) -> Persona | None:
        return next((p for p in self.personas if p.slug == slug), None)

    def assign(self, rows: Sequence[Sequence[float]]) -> list[str]:
        """The persona slug of each feature vector."""
        if not len(rows):
            return []
        with one_thread():
            clusters = self.kmeans.predict(self.scaler.transform(_transform(rows)))
        return [self.personas[c].slug for c in clusters]


class NotEnoughData(ValueError):
    """Too few profiles to learn from; the message says how many are needed."""


def one_thread() -> threadpool_limits:
    """Fit and predict on one OpenMP thread: on a few thousand rows threads cost more than they
    save, and on a busy machine they thrash (measured: a boosting fit of 0.1 s on one thread took
    18 s with the default threads on this 2-core machine under load)."""
    return threadpool_limits(limits=1, user_api="openmp")


def _transform(rows: Sequence[Sequence[float]]) -> np.ndarray:
    return np.log1p(np.clip(np.asarray(rows, dtype=float), 0, None))


def fit_personas(rows: Sequence[Sequence[float]], seed: int = 7, k_range: tuple[int, int] = K_RANGE,
                 say: Callable[[str], None] = lambda _: None) -> PersonaModel:
    """Cluster feature vectors (columns: features.PERSONA_FEATURES, see features.select); k in
    `k_range` by best silhouette."""
    if len(rows) < MIN_PROFILES:
        raise NotEnoughData(f"personas need at least {MIN_PROFILES} visitor profiles with events; got {len(rows)}")
    with one_thread():
        return _fit(rows, seed, k_range, say)


def _fit(rows: Sequence[Sequence[float]], seed: int, k_range: tuple[int, int], say: Callable[[str], None]) -> PersonaModel:
    scaler = StandardScaler()
    x = scaler.fit_transform(_transform(rows))
    low, high = k_range[0], min(k_range[1], len(rows) - 1)
    scores: dict[int, float] = {}
    models: dict[int, KMeans] = {}
    for k in range(low, high + 1):
        models[k] = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
        scores[k] = float(silhouette_score(x, models[k].labels_, sample_size=min(len(x), SILHOUETTE_SAMPLE), random_state=seed))
        say(f"  k={k}: silhouette {scores[k]:.3f}")
    best = max(scores, key=lambda k: (round(scores[k], 3), -k))  # ties go to the simpler model
    kmeans = models[best]
    sizes = np.bincount(kmeans.labels_, minlength=best)
    personas = label_clusters(kmeans.cluster_centers_, sizes, PERSONA_FEATURES)
    matrix = np.asarray(rows, dtype=float)
    return PersonaModel(scaler, kmeans, personas, PERSONA_FEATURES, scores[best], scores, matrix, kmeans.labels_.copy())


# name -> weights on the centre's z-scores; the best total names a cluster.
PATTERNS: dict[str, dict[str, float]] = {
    "Bargain hunter": {"cart_adds_90d": 1.0, "searches_90d": 0.3, "lifetime_value": -0.3, "average_scroll_depth": -0.3},
    "Researcher": {"page_views": 0.6, "searches_90d": 1.0, "average_scroll_depth": 1.0, "purchases": -0.5},
    "Quick buyer": {"purchases": 0.5, "page_views": -1.0, "average_scroll_depth": -0.5, "searches_90d": -0.5},
    "Loyal returner": {"sessions": 1.0, "lifetime_value": 0.6, "purchases": 0.4},
    "Window shopper": {"cart_adds_90d": -1.0, "purchases": -1.0, "average_scroll_depth": -0.5, "searches_90d": -0.3},
}


def label_clusters(centres: np.ndarray, sizes: Sequence[int], names_of_columns: Sequence[str]) -> list[Persona]:
    """A distinct persona per cluster centre (standardized feature space), greedy by best fit;
    pattern weights on features outside `names_of_columns` are ignored."""
    index = {name: i for i, name in enumerate(names_of_columns)}
    fit = {
        (c, name): sum(w * centres[c][index[f]] for f, w in weights.items() if f in index)
        for c in range(len(centres))
        for name, weights in PATTERNS.items()
    }
    names: dict[int, str] = {}
    for (c, name), score in sorted(fit.items(), key=lambda pair: -pair[1]):
        if score > 0.5 and c not in names and name not in names.values():
            names[c] = name
    personas = []
    for c, centre in enumerate(centres):
        name = names.get(c) or _fallback_name(centre, set(names.values()), names_of_columns)
        names[c] = name
        personas.append(Persona(slugify(name), name, describe(centre, names_of_columns), int(sizes[c])))
    return personas


def _fallback_name(centre: np.ndarray, taken: set[str], columns: Sequence[str]) -> str:
    strongest = int(np.argmax(np.abs(centre)))
    label = BY_NAME[columns[strongest]].label
    name = f"{'High' if centre[strongest] > 0 else 'Low'} {label}"
    suffix = 2
    while name in taken:
        name, suffix = f"{name.rsplit(' #', 1)[0]} #{suffix}", suffix + 1
    return name[:1].upper() + name[1:]


def describe(centre: np.ndarray, columns: Sequence[str], top: int = 3) -> str:
    """The features that set a cluster apart, e.g. "high cart adds in the last 7 days (+1.8 sd)"."""
    order = np.argsort(-np.abs(centre))[:top]
    parts = [f"{'high' if centre[i] > 0 else 'low'} {BY_NAME[columns[i]].label} ({centre[i]:+.1f} sd)" for i in order]
    return "; ".join(parts)


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or "persona"
