"""The rule language, driven by the language-neutral cases in fixtures/spec/rules.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailored.core.rules import CompiledRule, RuleError, compile_rule
from tailored.core.types import Context, Profile, hour_bucket
from tailored.core.windows import window_count

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
    hours, minutes = (lambda n: NOW - n * 3600), (lambda n: NOW - n * 60)
    optional = {
        "last_seen": hours(data["last_seen_hours_ago"]) if "last_seen_hours_ago" in data else None,
        "cart_updated_at": minutes(data["cart_changed_minutes_ago"]) if "cart_changed_minutes_ago" in data else None,
        "last_purchase_at": minutes(data["purchase_minutes_ago"]) if "purchase_minutes_ago" in data else None,
    }
    return Profile(
        visitor_id="v",
        page_views=data.get("page_views", 0),
        session_starts=tuple(hours(n) for n in data.get("session_hours_ago", [])),
        cart=data.get("cart", {}),
        lifetime_value=data.get("lifetime_value", 0.0),
        dwell={category: tuple(pair) for category, pair in data.get("dwell", {}).items()},
        recent_items=tuple((f"item-{i}", minutes(n)) for i, n in enumerate(data.get("item_view_minutes_ago", []))),
        recent_searches=tuple(data.get("recent_searches", [])),
        persona=data.get("persona"),
        scores=data.get("scores", {}),
        windows=windows,
        visit_landing=data.get("visit_landing"),
        visit_query=data.get("visit_query", {}),
        traits=data.get("traits", {}),
        **optional,
    )


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


def test_error_message_lists_the_operators_that_apply():
    with pytest.raises(RuleError, match="unknown operator 'eqq' for this text condition; use one of eq, ne, in"):
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


def test_explain_reports_what_each_condition_saw():
    rule = compile_rule({"all": [
        {"field": "context.device", "op": "eq", "value": "mobile"},
        {"count": {"event": "page_view", "category": "books", "within_hours": 24}, "op": "gte", "value": 3},
    ]})
    window = next(iter(rule.windows))
    explained = rule.explain(Profile(windows={window: 2}), Context(device="mobile"), NOW)
    assert explained["condition"] == "all" and explained["matched"] is False
    assert [(c["saw"], c["matched"]) for c in explained["children"]] == [("mobile", True), (2, False)]
    assert explained["children"][1]["condition"]["count"]["category"] == "books"
