"""tailored_train's orchestration on the database: synthetic histories stored once per seed,
personas and propensity trained, published and written to the live profiles, editors' persona
names kept across retraining, and too little data reported as a clear message."""

from __future__ import annotations

import io
import re
import time
from dataclasses import replace

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tailored import conf
from tailored.core.types import Snapshot
from tailored.ml import registry
from tailored.ml.catalog import CatalogItem
from tailored.ml.features import (
    FEATURE_WINDOWS,
    PERSONA_FEATURES,
    feature_matrix,
    features,
    select,
)
from tailored.ml.personas import NotEnoughData, fit_personas
from tailored.ml.recommender import interactions_from_events
from tailored.ml.synthetic import generate_histories
from tailored.ml.training import (
    PERSONAS,
    PROPENSITY,
    load_history,
    load_synthetic,
    score_live_profiles,
    sync_persona_labels,
    train,
)
from tailored.models import Event, PersonaLabel

pytestmark = pytest.mark.django_db
CATALOG = [CatalogItem(str(pk), f"Item {pk}", c, tags=(f"t{pk % 3}",), price=float(pk)) for pk, c in enumerate(["books", "beauty"] * 6, start=1)]


@pytest.fixture
def store(settings, tmp_path):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore",
        "MODEL_DIR": str(tmp_path / "models"),
        "MODEL_RELOAD_SECONDS": 0,
    }
    return conf.get_profile_store()


def test_loading_synthetic_visitors_says_how_far_along_it_is(store):
    said: list[str] = []
    load_synthetic(40, seed=9, say=said.append)
    generating = [line for line in said if line.startswith("  generating visitors:")]
    assert re.fullmatch(r"  generating visitors: 4/40 \(10%\), about \d+ s left", generating[0])
    assert [line.split(":")[1].split(" (")[0].strip() for line in generating] == [f"{n}/40" for n in range(4, 41, 4)]
    assert generating[-1].endswith("(100%), about 0 s left")
    assert any(line.startswith("  replaying into the profile store: 40/40 (100%)") for line in said)


def test_training_end_to_end_on_synthetic_histories(store):
    now = time.time()
    # 1. Synthetic histories are stored and replayed into the live store once per seed.
    added = load_synthetic(160, seed=5, now=now, say=lambda _: None)
    assert added == Event.objects.count() > 5000
    visitors = store.recent_visitors(now - 29 * 86400, 10_000)
    assert len(visitors) == 160
    assert load_synthetic(160, seed=5, now=now, say=lambda _: None) == 0 and Event.objects.count() == added
    # Thumbs up/down on recommendations reach the recommender's training interactions.
    kinds = {i.kind for i in interactions_from_events(load_history(now - 28 * 86400, now).rows)}
    assert kinds == {"view", "cart", "purchase", "up", "down"}
    # 2. Training publishes both models, with progress lines and metrics.
    lines: list[str] = []
    report = train(since_days=28, seed=5, now=now, say=lines.append)
    assert {PERSONAS, PROPENSITY} <= set(report.versions)
    personas = registry.load(PERSONAS)
    assert personas.version == report.versions[PERSONAS] and personas.metadata["seed"] == 5
    assert set(registry.load(PROPENSITY).artifact) == {"churn_risk", "purchase_intent"}
    text = "\n".join(lines)
    for step in ("[load]", "[personas]", "silhouette", "[propensity]", "ROC-AUC", "lift", "[score]"):
        assert step in text
    # 3. Persona labels exist for editors; live profiles carry persona and scores.
    assert {label.slug for label in PersonaLabel.objects.filter(active=True)} == {p.slug for p in report.personas.personas}
    assert report.scored == len(visitors)
    for profile in store.get_many(visitors[:30], now, FEATURE_WINDOWS).values():
        assert 0 <= profile.scores["churn_risk"] <= 1 and 0 <= profile.scores["purchase_intent"] <= 1
        expected = report.personas.assign(select([features(profile, now)], report.personas.feature_names))[0]
        assert profile.persona == expected
    # 4. The same seed gives the same personas.
    again = train(since_days=28, seed=5, now=now, only="personas", say=lambda _: None)
    assert again.personas.personas == report.personas.personas


def test_editors_names_survive_retraining(db):
    model = fit_personas(np.random.default_rng(0).gamma(2.0, 3.0, size=(120, len(PERSONA_FEATURES))), seed=1, k_range=(3, 4))
    sync_persona_labels(model, "v1")
    first = PersonaLabel.objects.get(slug=model.personas[0].slug)
    first.name = "Our best friends"
    first.save()
    PersonaLabel.objects.create(slug="gone", name="Gone")
    sync_persona_labels(model, "v2")
    first.refresh_from_db()
    assert first.name == "Our best friends" and first.model_version == "v2" and first.active
    assert first.size == model.personas[0].size and first.description == model.personas[0].description
    assert not PersonaLabel.objects.get(slug="gone").active


def test_too_little_data_is_a_clear_message(store):
    with pytest.raises(NotEnoughData, match="at least 500 stored events.*--synthetic"):
        train(say=lambda _: None)
    with pytest.raises(CommandError, match="at least 500 stored events"):
        call_command("tailored_train", stdout=io.StringIO())


def test_propensity_needs_two_weeks_of_events(store):
    now = time.time()
    load_synthetic(80, seed=6, now=now, days=10, say=lambda _: None)
    with pytest.raises(NotEnoughData, match="at least 14 days"):
        train(since_days=10, now=now, only="propensity", say=lambda _: None)


def test_scores_and_personas_reach_redis_profiles(settings, use_redis_store, tmp_path):
    """The scoring step writes through the store port: the same on Redis as in memory."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "MODEL_DIR": str(tmp_path / "models")}
    store, now = conf.get_profile_store(), time.time()
    histories = generate_histories(CATALOG, visitors=60, days=5, seed=2, now=now)
    for history in histories:
        shift = now - 60 - history.events[-1].ts
        # A request's snapshot is what lists a visitor among the Redis store's recent visitors.
        store.record(history.visitor_id, [replace(e, ts=e.ts + shift) for e in history.events][-200:], now, Snapshot(device="desktop"))
    rows = select(feature_matrix(list(store.get_many([h.visitor_id for h in histories], now, FEATURE_WINDOWS).values()), now), PERSONA_FEATURES)
    model = fit_personas(rows, seed=1, k_range=(3, 3))
    assert score_live_profiles(model, {}, now, say=lambda _: None) == 60
    profiles = store.get_many([h.visitor_id for h in histories], now, FEATURE_WINDOWS)
    assert [p.persona for p in profiles.values()] == model.assign(rows)
