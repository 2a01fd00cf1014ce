"""`trait.<key>` rules (issue 20) in both engines: the compiled segment set answers as the rule
tree does on every spec case, and no stored value (of any kind) makes evaluation raise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailored.core.audience import PROFILE_FACT, rule_facts
from tailored.core.rules import RuleError, compile_rule
from tailored.core.segments import SegmentDefinition, compile_segments
from tailored.core.types import Context, Profile

SPEC = json.loads((Path(__file__).parents[2] / "fixtures" / "spec" / "rules.json").read_text())
TRAIT_CASES = [case for case in SPEC["cases"] if case["name"].startswith("trait:")]
NOW = SPEC["now"]
ODD_VALUES = [None, "", "gold", "12", 12, 12.5, float("nan"), True, False, [], {}, ["gold"]]


def test_both_engines_agree_on_every_trait_case():
    definitions = tuple(SegmentDefinition(f"s{i}", compile_rule(case["rule"])) for i, case in enumerate(TRAIT_CASES))
    matcher = compile_segments(definitions)
    for i, case in enumerate(TRAIT_CASES):
        profile = Profile(traits=case["profile"]["traits"])
        assert definitions[i].rule.matches(profile, Context(), NOW) is case["expect"], case["name"]
        assert (f"s{i}" in matcher(profile, Context(), NOW)) is case["expect"], case["name"]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_a_value_of_any_kind_never_makes_a_trait_rule_raise(value):
    rules = tuple(SegmentDefinition(f"s{i}", compile_rule(case["rule"])) for i, case in enumerate(TRAIT_CASES))
    profile = Profile(traits=dict.fromkeys(SPEC["traits"], value))
    compile_segments(rules)(profile, Context(), NOW)
    for definition in rules:
        definition.rule.explain(profile, Context(), NOW)


@pytest.mark.parametrize(("rule", "path", "message"), [
    ({"field": "trait.newsletter", "op": "ne", "value": True}, "$.op", "use one of eq"),
    ({"field": "trait.lifetime_orders", "op": "ne", "value": 1}, "$.op", "use one of eq, gt, gte, lt, lte, between, present"),
    ({"field": "trait.account_type", "op": "matches", "value": "^b"}, "$.op", "use one of eq, in, contains, present"),
    ({"field": "trait.loyalty_tier", "op": "contains", "value": "gol"}, "$.op", "use one of eq, in, present"),
    ({"field": "trait.loyalty_tier", "op": "eq", "value": "diamond"}, "$.value", "must be one of bronze, silver, gold, platinum"),
    ({"field": "trait.lifetime_orders", "op": "gte", "value": "10"}, "$.value", "must be a number"),
    ({"field": "trait.newsletter", "op": "eq", "value": "yes"}, "$.value", "must be true or false"),
    ({"field": "trait.shoe_size", "op": "eq", "value": 42}, "$.field", "no trait 'shoe_size' is declared (traits declared: account_type"),
])
def test_each_kind_takes_its_own_operators_and_values(rule, path, message):
    with pytest.raises(RuleError) as caught:
        compile_rule(rule)
    assert caught.value.path == path and message in caught.value.message


def test_a_trait_is_a_profile_fact_for_shared_caching():
    # A visitor without consent has no profile, so no traits: a page reading only traits and
    # the profile is the same for all of them.
    assert rule_facts({"field": "trait.loyalty_tier", "op": "eq", "value": "gold"}) == {PROFILE_FACT}
