"""The rule language, driven by the language-neutral cases in fixtures/spec/rules.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personalization.core.rules import RuleError, compile_rule
from personalization.core.types import Context, Profile, hour_bucket

SPEC = json.loads((Path(__file__).parents[2] / "fixtures" / "spec" / "rules.json").read_text())
NOW = SPEC["now"]


def profile_from_spec(data: dict) -> Profile:
    views = {
        category: {hour_bucket(NOW) - int(hours_ago): count for hours_ago, count in buckets.items()}
        for category, buckets in data.get("views", {}).items()
    }
    return Profile(visitor_id="v", page_views=data.get("page_views", 0), category_views=views)


@pytest.mark.parametrize("case", SPEC["cases"], ids=[c["name"] for c in SPEC["cases"]])
def test_spec_case(case):
    rule = compile_rule(case["rule"])
    profile = profile_from_spec(case.get("profile", {}))
    context = Context(**case.get("context", {}))
    assert rule.matches(profile, context, NOW) is case["expect"]


@pytest.mark.parametrize("case", SPEC["errors"], ids=[c["name"] for c in SPEC["errors"]])
def test_invalid_rule_names_its_path(case):
    with pytest.raises(RuleError) as caught:
        compile_rule(case["rule"])
    assert caught.value.path == case["path"]
    assert str(caught.value).startswith(case["path"] + ": ")


def test_error_message_lists_known_operators():
    with pytest.raises(RuleError, match="unknown operator 'eqq'; known: eq, ne"):
        compile_rule({"field": "context.device", "op": "eqq", "value": "mobile"})


def test_compiled_rule_keeps_its_source():
    source = {"field": "context.device", "op": "eq", "value": "mobile"}
    assert compile_rule(source).source == source
