"""Personas: KMeans with k chosen by silhouette, deterministic for a seed, labelled from the
features that set each cluster apart; too little data is a clear error."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tailored.ml.catalog import CatalogItem
from tailored.ml.features import PERSONA_FEATURES, feature_matrix, select
from tailored.ml.personas import PATTERNS, NotEnoughData, fit_personas, label_clusters
from tailored.ml.synthetic import generate_histories
from tailored.ml.training import profiles_at

NOW = 1_800_000_000.0
CATALOG = [
    CatalogItem(str(pk), f"Item {pk}", category, tags=(f"t{pk % 4}",), price=float(5 + 7 * (pk % 9)))
    for pk, category in enumerate(["books", "outdoors", "beauty", "fashion"] * 6, start=1)
]


@pytest.fixture(scope="module")
def population():
    histories = generate_histories(CATALOG, visitors=400, days=28, seed=3, now=NOW)
    profiles = profiles_at({h.visitor_id: h.events for h in histories}, NOW)
    archetypes = {h.visitor_id: h.archetype for h in histories}
    rows = select(feature_matrix(list(profiles.values()), NOW), PERSONA_FEATURES)
    return rows, [archetypes[v] for v in profiles]


@pytest.fixture(scope="module")
def model(population):
    return fit_personas(population[0], seed=5, k_range=(3, 6))


def test_k_is_the_best_silhouette_in_range(model):
    assert set(model.silhouettes) == {3, 4, 5, 6}
    assert len(model.personas) == max(model.silhouettes, key=model.silhouettes.get)
    assert model.silhouette == max(model.silhouettes.values()) > 0.2


def test_the_same_seed_gives_the_same_personas(population, model):
    again = fit_personas(population[0], seed=5, k_range=(3, 6))
    assert again.personas == model.personas
    assert np.array_equal(again.kmeans.cluster_centers_, model.kmeans.cluster_centers_)


def test_every_profile_gets_one_named_persona_and_sizes_add_up(population, model):
    rows, _ = population
    slugs = model.assign(rows)
    assert Counter(slugs) == {p.slug: p.size for p in model.personas}
    assert len({p.slug for p in model.personas}) == len(model.personas)
    assert all(p.name and p.description and p.slug == p.slug.lower() for p in model.personas)


def test_personas_recover_the_synthetic_archetypes(population, model):
    """Researchers and window shoppers are the most distinct archetypes: each should mostly land
    in one cluster, labelled after the pattern it shows."""
    rows, archetypes = population
    slugs = model.assign(rows)
    for archetype, slug in (("researcher", "researcher"), ("window_shopper", "window-shopper")):
        landed = Counter(s for s, a in zip(slugs, archetypes, strict=True) if a == archetype)
        assert landed.most_common(1)[0][0] == slug and landed[slug] >= 0.6 * sum(landed.values()), landed


def test_labels_follow_the_centres_and_stay_distinct():
    columns = ("cart_adds_90d", "searches_90d", "average_scroll_depth", "purchases", "page_views")
    centres = np.array([[2.0, 0.0, -0.5, 0.0, 0.0], [-0.5, 2.0, 1.5, -1.0, 1.0], [2.0, 0.1, -0.4, 0.0, 0.0]])
    personas = label_clusters(centres, [10, 20, 30], columns)
    assert [p.name for p in personas][:2] == ["Bargain hunter", "Researcher"]
    assert len({p.name for p in personas}) == 3 and personas[2].size == 30
    assert "high searches in the last 90 days" in personas[1].description
    assert set(PATTERNS) >= {"Bargain hunter", "Researcher", "Quick buyer", "Window shopper", "Loyal returner"}


def test_too_few_profiles_is_a_clear_error():
    with pytest.raises(NotEnoughData, match="at least 50 visitor profiles"):
        fit_personas([[1.0] * len(PERSONA_FEATURES)] * 10)
