"""The builder's translation between condition rows and the rule language, both ways, and
where a compile error lands. No database: rows are plain dicts, as the widget posts them."""

from __future__ import annotations

import json

import pytest

from tailored.core.rules import RuleError, compile_rule
from tailored.forms import (
    RuleBuilderWidget,
    RuleField,
    RuleInput,
    catalog,
    choices_of,
    locate,
    rows_to_rule,
    rule_to_rows,
)
from tailored.models import PersonaLabel

VIEWED_ELECTRONICS = {"type": "count", "event": "page_view", "category": "electronics", "hours": "24", "op": "gte", "value": "3"}
ON_MOBILE = {"type": "field", "field": "context.device", "op": "eq", "choice": "mobile", "value": ""}
COUNT_RULE = {"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 3}
MOBILE_RULE = {"field": "context.device", "op": "eq", "value": "mobile"}


@pytest.mark.parametrize(
    ("row", "condition"),
    [
        (VIEWED_ELECTRONICS, COUNT_RULE),
        (
            {"type": "count", "event": "add_to_cart", "item": "17", "hours": "48", "op": "gt", "value": "0"},
            {"count": {"event": "add_to_cart", "item": "17", "within_hours": 48}, "op": "gt", "value": 0},
        ),
        (ON_MOBILE, MOBILE_RULE),
        (
            {"type": "field", "field": "context.daypart", "op": "in", "value": "morning, evening"},
            {"field": "context.daypart", "op": "in", "value": ["morning", "evening"]},
        ),
        (
            {"type": "field", "field": "profile.lifetime_value", "op": "between", "value": "100, 500.5"},
            {"field": "profile.lifetime_value", "op": "between", "value": [100, 500.5]},
        ),
        (
            {"type": "field", "field": "profile.session_converted", "op": "eq", "choice": "false"},
            {"field": "profile.session_converted", "op": "eq", "value": False},
        ),
        (
            {"type": "field", "field": "context.utm_campaign", "op": "matches", "value": "^spring"},
            {"field": "context.utm_campaign", "op": "matches", "value": "^spring"},
        ),
        (
            {"type": "avg_dwell", "category": "books", "op": "gte", "value": "30"},
            {"avg_dwell": {"category": "books"}, "op": "gte", "value": 30},
        ),
        (
            {"type": "sequence", "views": "3", "minutes": "10"},
            {"sequence": {"views": 3, "within_minutes": 10}},
        ),
        ({"type": "cart_abandoned", "idle": "60"}, {"cart_abandoned": {"idle_minutes": 60}}),
        (
            {"type": "score", "score": "churn_risk", "op": "gte", "value": "0.7"},
            {"field": "score.churn_risk", "op": "gte", "value": 0.7},
        ),
    ],
    ids=["count-category", "count-item", "field-choice", "field-in", "field-between", "flag", "matches",
         "avg-dwell", "sequence", "cart-abandoned", "score"],
)
def test_each_condition_type_becomes_its_rule_and_loads_back_as_the_same_row(row, condition):
    assert rows_to_rule("all", [row]) == condition
    compile_rule(condition)  # what the builder makes is valid rule language
    match, rows = rule_to_rows(condition)
    assert match == "all"
    assert rows_to_rule(match, rows) == condition


def test_rows_combine_with_all_or_any():
    assert rows_to_rule("all", [VIEWED_ELECTRONICS, ON_MOBILE]) == {"all": [COUNT_RULE, MOBILE_RULE]}
    assert rows_to_rule("any", [VIEWED_ELECTRONICS, ON_MOBILE]) == {"any": [COUNT_RULE, MOBILE_RULE]}


def test_an_existing_rule_loads_as_rows_with_its_match():
    match, rows = rule_to_rows({"any": [COUNT_RULE, MOBILE_RULE]})
    assert match == "any"
    assert [row["type"] for row in rows] == ["count", "field"]
    assert rows[0]["category"] == "electronics" and rows[0]["value"] == "3" and rows[0]["hours"] == "24"
    assert rows[1]["field"] == "context.device" and rows[1]["choice"] == "mobile"


@pytest.mark.parametrize(
    "rule",
    [
        {"all": [COUNT_RULE, {"any": [MOBILE_RULE, {"field": "context.device", "op": "eq", "value": "tablet"}]}]},
        {"not": MOBILE_RULE},
        {"all": [{"not": MOBILE_RULE}]},
        {"field": "context.device", "op": "in", "value": ["mobile, or not"]},  # a comma inside an item
        {"field": "profile.sessions", "op": "eq", "value": True},  # 1 == True must not pass as a number
    ],
    ids=["nested-any", "not", "not-inside-all", "comma-in-item", "bool-for-number"],
)
def test_rules_the_rows_cannot_reproduce_are_left_to_the_json_view(rule):
    assert rule_to_rows(rule) is None
    state = RuleBuilderWidget().state(rule)
    assert state.mode == "json" and not state.representable
    assert json.loads(state.json_text) == rule


def test_unparseable_values_pass_through_for_the_compiler_to_name():
    rule = rows_to_rule("all", [VIEWED_ELECTRONICS, {**VIEWED_ELECTRONICS, "value": "lots"}])
    assert rule["all"][1]["value"] == "lots"
    with pytest.raises(RuleError) as caught:
        compile_rule(rule)
    assert caught.value.path == "$.all[1].value"


@pytest.mark.parametrize(
    ("rows", "path", "expected"),
    [
        ([VIEWED_ELECTRONICS, ON_MOBILE], "$.all[1].value", (1, "choice")),
        ([VIEWED_ELECTRONICS, VIEWED_ELECTRONICS], "$.all[1].value", (1, "value")),
        ([VIEWED_ELECTRONICS, ON_MOBILE], "$.any[0].count.within_hours", (0, "hours")),
        ([VIEWED_ELECTRONICS], "$.count.event", (0, "event")),
        ([{"type": "score", "score": "", "op": "gte", "value": "1"}], "$.field", (0, "score")),
        ([{"type": "field", "field": "profile.lifetime_value", "op": "between", "value": "5"}], "$.value", (0, "value")),
        ([{"type": "sequence", "views": "0", "minutes": "5"}], "$.sequence.views", (0, "views")),
    ],
)
def test_a_compile_error_is_placed_on_its_row_and_input(rows, path, expected):
    placed = locate(RuleError(path, "must be a number"), rows)
    assert (placed.row, placed.part) == expected


def test_an_error_outside_the_rows_is_not_placed():
    assert locate(RuleError("$.all", "needs a non-empty list"), [VIEWED_ELECTRONICS, ON_MOBILE]) is None
    assert locate(RuleError("$.all[5].op", "bad"), [VIEWED_ELECTRONICS, ON_MOBILE]) is None


def test_the_widget_reads_rows_in_index_order_and_skips_removed_ones():
    data = {
        "rule-mode": "builder",
        "rule-match": "any",
        "rule-7-type": "field", "rule-7-field": "context.device", "rule-7-op": "eq", "rule-7-choice": "mobile",
        "rule-2-type": "sequence", "rule-2-views": "3", "rule-2-minutes": "10",
        "rule-json": "ignored in the builder view",
    }
    posted = RuleBuilderWidget().value_from_datadict(data, {}, "rule")
    assert posted.match == "any" and [row["type"] for row in posted.rows] == ["sequence", "field"]
    assert RuleField().clean(posted) == {"any": [{"sequence": {"views": 3, "within_minutes": 10}}, MOBILE_RULE]}


def test_the_json_view_is_used_as_typed():
    posted = RuleInput(mode="json", json_text=json.dumps({"not": MOBILE_RULE}))
    assert RuleField().clean(posted) == {"not": MOBILE_RULE}
    with pytest.raises(Exception, match="Not valid JSON"):
        RuleField().clean(RuleInput(mode="json", json_text="{nope"))
    with pytest.raises(Exception, match="Add at least one condition"):
        RuleField().clean(RuleInput(mode="builder", rows=()))


@pytest.mark.django_db
def test_personas_found_by_training_are_offered_as_choices():
    row = {"type": "field", "field": "profile.persona", "op": "eq", "choice": "researcher"}
    assert choices_of(row) == ()  # before any training the persona is typed
    PersonaLabel.objects.create(slug="researcher", name="Researchers")
    PersonaLabel.objects.create(slug="quick-buyer", name="Quick buyers")
    assert choices_of(row) == ("quick-buyer", "researcher")
    assert catalog()["fields"]["profile.persona"]["choices"] == ["quick-buyer", "researcher"]
    assert rows_to_rule("all", [row]) == {"field": "profile.persona", "op": "eq", "value": "researcher"}
