"""Numbers a rule cannot hold: NaN, Infinity and floats too large to be finite. Python's json
module reads them, but they are not JSON and the database's JSON column refuses them on save
(SQLite's JSON_VALID check, PostgreSQL's jsonb). The admin forms refuse them as invalid JSON
beside the field, and the rule compiler refuses them whatever the entry point (API, GraphQL)."""

from __future__ import annotations

import math

import pytest
from bs4 import BeautifulSoup
from django.core.exceptions import ValidationError
from django.urls import reverse

from tailored.activation.models import Trigger
from tailored.core.rules import RuleError, compile_rule
from tailored.models import Segment
from tests.activation.conftest import webhook

pytestmark = pytest.mark.django_db

REFUSED_JSON = [
    ('{"field": "profile.page_views", "op": "gt", "value": NaN}', "Not valid JSON: NaN is not a JSON number"),
    ('{"field": "profile.page_views", "op": "between", "value": [-Infinity, Infinity]}',
     "Not valid JSON: -Infinity is not a JSON number"),
    ('{"field": "profile.page_views", "op": "gt", "value": 1e400}', "Not valid JSON: the number 1e400 is too large to represent"),
]


def segment_form(json_text: str) -> dict[str, str]:
    return {
        "name": "Heavy readers", "slug": "heavy-readers", "description": "", "enabled": "on", "priority": "0",
        "rule-mode": "json", "rule-match": "all", "rule-json": json_text,
    }


def trigger_form(condition: str) -> dict[str, str]:
    destination = webhook("http://127.0.0.1:9/hook")
    return {"name": "Heavy readers leave", "enabled": "on", "kind": "cart_abandoned", "minutes": "30",
            "cooldown_hours": "24", "destination": str(destination.pk), "condition": condition}


def field_errors(response) -> list[str]:
    page = BeautifulSoup(response.content, "html.parser")
    return [e.get_text(" ", strip=True) for e in page.select(".error-message")]


@pytest.mark.parametrize(("json_text", "message"), REFUSED_JSON)
def test_the_segment_form_refuses_non_finite_numbers_as_invalid_json(editor, memory_store, json_text, message):
    response = editor.post(reverse(Segment.snippet_viewset.get_url_name("add")), segment_form(json_text))
    assert response.status_code == 200
    shown = field_errors(response)
    assert any(error.startswith(message) for error in shown), shown
    assert not Segment.objects.filter(slug="heavy-readers").exists()


@pytest.mark.parametrize(("json_text", "message"), REFUSED_JSON)
def test_the_trigger_condition_refuses_non_finite_numbers_as_invalid_json(editor, json_text, message):
    response = editor.post(reverse("tailored_triggers:add"), trigger_form(json_text))
    assert response.status_code == 200
    assert response.context["form"].errors["condition"][0].startswith(message)
    assert message in " ".join(field_errors(response))
    assert not Trigger.objects.exists()


@pytest.mark.parametrize(("rule", "path", "message"), [
    ({"field": "profile.page_views", "op": "gt", "value": math.nan}, "$.value", "must be a finite number (not NaN or Infinity), got nan"),
    ({"field": "profile.page_views", "op": "eq", "value": -math.inf}, "$.value", "must be a finite number (not NaN or Infinity), got -inf"),
    ({"field": "profile.page_views", "op": "in", "value": [3, math.inf]}, "$.value[1]", "must be a finite number"),
    ({"field": "profile.page_views", "op": "between", "value": [-math.inf, math.inf]}, "$.value",
     "'between' needs [low, high], two finite numbers (not NaN or Infinity)"),
])
def test_the_compiler_refuses_non_finite_numbers_with_where_and_why(rule, path, message):
    with pytest.raises(RuleError) as caught:
        compile_rule(rule)
    assert caught.value.path == path
    assert caught.value.message.startswith(message)


def test_a_huge_whole_number_is_refused_as_out_of_range_not_a_crash():
    # float() of 10**400 overflows: the range is checked on the int itself.
    with pytest.raises(RuleError, match=r"\$\.count\.within_hours: must be a whole number of hours"):
        compile_rule({"count": {"event": "page_view", "within_hours": 10**400}, "op": "gte", "value": 1})
    compile_rule({"field": "profile.page_views", "op": "lt", "value": 10**400})  # finite, however large: it compiles


def test_a_segment_saved_without_the_form_is_refused_before_the_database(memory_store):
    # The path an API or a script takes: the model's clean compiles the rule.
    segment = Segment(name="Heavy readers", slug="heavy-readers", rule={"field": "profile.page_views", "op": "gt", "value": math.nan})
    with pytest.raises(ValidationError, match="must be a finite number"):
        segment.full_clean()
