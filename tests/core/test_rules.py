"""The rule language, driven by the language-neutral cases in fixtures/spec/rules.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personalization.core.rules import CompiledRule, RuleError, compile_rule
from personalization.core.types import Context, Profile, hour_bucket
from personalization.core.windows import window_count

SPEC = json.loads((Path(__file__).parents[2] / "fixtures" / "spec" / "rules.json").read_text())
NOW = SPEC["now"]


def profile_from_spec(data: dict, rule: CompiledRule) -> Profile:
    """A profile whose windowed counts are computed, as a store would, from the spec's events."""
    now_hour = hour_bucket(NOW)
    hourly = {
        counter: {now_hour - int(hours_ago): count for hours_ago, count in buckets.items()}
        for counter, buckets in data.get("events", {}).items()
    }
    daily = {counter: {} for counter in hourly}
    for counter, buckets in hourly.items():
        for hour, count in buckets.items():
            daily[counter][hour // 24] = daily[counter].get(hour // 24, 0) + count
    windows = {w: window_count(hourly.get(w.counter, {}), daily.get(w.counter, {}), w.hours, now_hour) for w in rule.windows}
    return Profile(visitor_id="v", page_views=data.get("page_views", 0), windows=windows)


@pytest.mark.parametrize("case", SPEC["cases"], ids=[c["name"] for c in SPEC["cases"]])
def test_spec_case(case):
    rule = compile_rule(case["rule"])
    profile = profile_from_spec(case.get("profile", {}), rule)
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


def test_counts_name_only_registered_events_when_given_the_registry():
    rule = {"count": {"event": "teleport", "within_hours": 1}, "op": "gte", "value": 1}
    assert compile_rule(rule).windows  # without a registry any event name is accepted
    with pytest.raises(RuleError, match="unknown event type 'teleport'") as caught:
        compile_rule(rule, known_events=["page_view", "purchase"])
    assert caught.value.path == "$.count.event"


def test_a_rule_lists_the_windows_it_reads():
    rule = compile_rule(
        {"all": [
            {"count": {"event": "page_view", "category": "books", "within_hours": 24}, "op": "gte", "value": 1},
            {"not": {"count": {"event": "purchase", "within_hours": 168}, "op": "gte", "value": 1}},
        ]}
    )
    assert {(w.counter, w.hours) for w in rule.windows} == {("page_view|c:books", 24), ("purchase", 168)}
