"""A persona becomes a rule: a depth-3 tree's positive paths in the rule language, compiled by
the real rule compiler, readable thresholds, and a fidelity that the compiled rule reproduces
when evaluated on the training profiles themselves."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.core.rules import compile_rule
from tailored.core.types import Context
from tailored.events.schema import EVENT_TYPES
from tailored.ml.catalog import CatalogItem
from tailored.ml.features import PERSONA_FEATURES, feature_matrix, select
from tailored.ml.persona_rules import propose_rule, readable, to_rule
from tailored.ml.personas import fit_personas
from tailored.ml.synthetic import generate_histories
from tailored.ml.training import profiles_at
from tailored.rule_sentences import sentence

NOW = 1_800_000_000.0
CATALOG = [
    CatalogItem(str(pk), f"Item {pk}", category, tags=(f"t{pk % 4}",), price=float(5 + 7 * (pk % 9)))
    for pk, category in enumerate(["books", "outdoors", "beauty", "fashion"] * 6, start=1)
]


@pytest.fixture(scope="module")
def trained():
    histories = generate_histories(CATALOG, visitors=300, days=28, seed=4, now=NOW)
    profiles = list(profiles_at({h.visitor_id: h.events for h in histories}, NOW).values())
    model = fit_personas(select(feature_matrix(profiles, NOW), PERSONA_FEATURES), seed=2, k_range=(3, 5))
    return model, profiles


def _depth(rule: dict) -> int:
    """Conditions on one path from the root (what a depth-3 tree bounds)."""
    if "any" in rule:
        return max(_depth(child) for child in rule["any"])
    if "all" in rule:
        return sum(_depth(child) for child in rule["all"])
    return 1


def test_each_persona_gets_a_compilable_rule_of_at_most_three_conditions_per_path(trained):
    model, _ = trained
    for persona in model.personas:
        proposal = propose_rule(model, persona.slug)
        assert proposal.rule is not None, persona
        compile_rule(proposal.rule, known_events=EVENT_TYPES)  # raises RuleError if invalid
        assert _depth(proposal.rule) <= 3
        assert sentence(proposal.rule).startswith("Visitors ")


def test_fidelity_is_what_the_compiled_rule_does_on_the_training_profiles(trained):
    model, profiles = trained
    for persona in model.personas:
        proposal = propose_rule(model, persona.slug)
        compiled = compile_rule(proposal.rule, known_events=EVENT_TYPES)
        matched = np.array([compiled.matches(p, Context(), NOW) for p in profiles])
        members = np.array([model.slug_of(c) == persona.slug for c in model.clusters])
        assert proposal.accuracy == pytest.approx((matched == members).mean())
        assert proposal.recall == pytest.approx((matched & members).sum() / members.sum())
        assert proposal.accuracy > 0.8, (persona, sentence(proposal.rule))


def test_the_same_model_proposes_the_same_rule(trained):
    model, _ = trained
    slug = model.personas[0].slug
    assert propose_rule(model, slug) == propose_rule(model, slug)


def test_thresholds_move_to_round_numbers_without_moving_any_profile():
    values = np.array([0.0, 1.0, 2.0, 3.0, 149.5, 152.0])
    assert readable(2.5, values) == 2  # x <= 2.5 on integers is x <= 2
    assert readable(150.75, values) == 150
    assert readable(0.5, values) == 0
    for threshold in (0.5, 2.5, 76.25, 150.75):
        r = readable(threshold, values)
        assert np.array_equal(values <= r, values <= threshold)


def test_paths_become_any_of_all_and_nullable_upper_bounds_use_not():
    one = ((("purchases", "gt", 2),),)
    assert to_rule(one) == {"field": "profile.purchases", "op": "gt", "value": 2}
    two = ((("purchases", "gt", 2), ("average_scroll_depth", "lte", 50)), (("page_views", "gt", 30),))
    assert to_rule(two) == {
        "any": [
            {"all": [
                {"field": "profile.purchases", "op": "gt", "value": 2},
                {"not": {"field": "profile.average_scroll_depth", "op": "gt", "value": 50}},
            ]},
            {"field": "profile.page_views", "op": "gt", "value": 30},
        ]
    }
    assert to_rule(()) is None
    assert sentence(to_rule(two)).startswith("Visitors ")


def test_an_unknown_persona_is_refused(trained):
    with pytest.raises(ValueError, match="no training profiles"):
        propose_rule(trained[0], "nobody-like-this")
