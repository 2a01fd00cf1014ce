"""Personas and propensity scores for profiles, from the published models.

`tailored_train` scores every live profile after training; between trainings the stream worker
scores the visitors whose events it has just stored (`score_visitors`), so a new visitor gets a
persona and scores within seconds of their first events, and segment rules on them
(`profile.persona`, `score.churn_risk`) follow the visitor's behaviour. Nothing here runs on the
request path: a request only reads what was written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from tailored import conf
from tailored.core.types import Profile

from . import registry
from .features import FEATURE_WINDOWS, feature_matrix, select

if TYPE_CHECKING:
    # The models arrive unpickled from the registry: the stream worker imports this module, and
    # runs without scikit-learn (the `ml` extra) by scoring nobody.
    from .personas import PersonaModel
    from .propensity import PropensityModel

logger = logging.getLogger(__name__)

PERSONAS, PROPENSITY = "personas", "propensity"  # registry names, as training publishes them


def model_outputs(
    profiles: Mapping[str, Profile],
    personas: PersonaModel | None,
    propensity: Mapping[str, PropensityModel],
    now: float,
) -> dict[str, tuple[str | None, dict[str, float]]]:
    """visitor -> (persona, scores). Without a persona model each profile keeps its persona."""
    ids = list(profiles)
    if not ids:
        return {}
    matrix = feature_matrix([profiles[v] for v in ids], now)
    slugs = personas.assign(select(matrix, personas.feature_names)) if personas else [profiles[v].persona for v in ids]
    scores = {target: model.score(select(matrix, model.feature_names)) for target, model in propensity.items()}
    return {v: (slugs[i], {t: round(s[i], 4) for t, s in scores.items()}) for i, v in enumerate(ids)}


def needs_profiles() -> bool:
    """Whether `score_visitors` reads profiles now: some model is published (the worker then reads
    each batch's profiles once, with FEATURE_WINDOWS among the windows)."""
    try:
        return registry.load(PERSONAS) is not None or registry.load(PROPENSITY) is not None
    except Exception:  # scoring logs what is wrong with the models when it runs
        return False


def score_visitors(visitor_ids: Collection[str], now: float | None = None, profiles: dict[str, Profile] | None = None) -> int:
    """Score these visitors with the current models; how many profiles were written. `profiles`:
    theirs as the worker read them (with FEATURE_WINDOWS), updated here with what is written, so
    what reads them next in the batch sees the new persona and scores, as a new read would. Never
    raises: a missing or broken model, or a store that is down, is logged and skipped (the
    visitors keep their previous persona and scores)."""
    if not visitor_ids:
        return 0
    now = time.time() if now is None else now
    try:
        personas, propensity = registry.load(PERSONAS), registry.load(PROPENSITY)
        if personas is None and propensity is None:
            return 0
        store = conf.get_profile_store()
        if profiles is None:
            profiles = {}
        missing = [v for v in visitor_ids if v not in profiles]  # all of them, unless the worker read them
        if missing:
            profiles.update(store.get_many(missing, now, FEATURE_WINDOWS))
        outputs = model_outputs(
            {v: profiles[v] for v in visitor_ids},
            personas.artifact if personas is not None else None,
            propensity.artifact if propensity is not None else {},
            now,
        )
        written = store.set_model_outputs(outputs)
        apply_outputs(profiles, outputs)
        return written
    except Exception as error:  # scoring is a refinement: it must never stop ingestion
        logger.warning("could not score %d visitors: %s: %s", len(visitor_ids), type(error).__name__, error)
        return 0


def apply_outputs(profiles: dict[str, Profile], outputs: Mapping[str, tuple[str | None, Mapping[str, float]]]) -> None:
    """The profiles as the store has them after `set_model_outputs(outputs)`: it writes only
    profiles that exist (seen before), sets the persona (or removes it) and adds the scores."""
    for visitor_id, (persona, scores) in outputs.items():
        profile = profiles[visitor_id]
        if profile.last_seen is not None:
            profiles[visitor_id] = replace(profile, persona=persona, scores={**profile.scores, **{k: round(float(v), 6) for k, v in scores.items()}})
