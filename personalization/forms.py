"""Admin forms: the segment form and its rule builder.

The builder is a form field whose widget posts plain inputs, one row per condition
(`rule-0-type`, `rule-0-op`, `rule-0-value`, ...), plus the match (`all`/`any`), the view
(`builder`/`json`) and the raw JSON text. Turning rows into the rule language, and a stored
rule back into rows, happens here on the server, so the edit view, the live-count endpoint and
the tests share one translation. `rule_builder.js` only shows the inputs a row's type needs,
adds and removes rows, switches views and asks the endpoint for the live count.

Rules are still validated by `Segment.clean` (the rule compiler); this module only places a
RuleError next to the row it concerns.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorList
from django.urls import NoReverseMatch, reverse
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm

from tailored.core.fields import (
    FIELDS,
    FLAG,
    NUMBER,
    QUERY_PREFIX,
    SCORE_PREFIX,
    SITE_FIELDS,
    SITE_PREFIX,
    TEXT,
    TRAIT_FIELDS,
    TRAIT_PREFIX,
    VISIT_QUERY_PREFIX,
    Field,
    lookup,
)
from tailored.core.rules import OPERATORS_BY_KIND, RuleError, compile_rule
from tailored.events.json_body import loads_finite
from tailored.events.schema import EVENT_TYPES
from tailored.models import PersonaLabel
from tailored.rule_values import (
    CATEGORY,
    FIELD_KINDS,
    ITEM,
    LAZY_KINDS,
    SCORE,
    ValueWarning,
    picker_options,
    value_warnings,
)

Row = Mapping[str, str]

# The condition types an editor picks from, and the inputs each one uses.
TYPES: dict[str, str] = {
    "count": "Viewed or did something N times",
    "field": "A fact about the visitor or request",
    "avg_dwell": "Average dwell in a category",
    "sequence": "Product views in quick succession",
    "cart_abandoned": "Abandoned cart",
    "score": "Model score",
    "query": "A query parameter in the address",
    "page_visits": "Visited a page or a section",
    "trait": "CRM trait",
}
PARTS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "count": ("event", "category", "item", "op", "value", "hours"),
    "field": ("field", "op", "value", "choice"),
    "avg_dwell": ("category", "op", "value"),
    "sequence": ("views", "minutes"),
    "cart_abandoned": ("idle",),
    "score": ("score", "op", "value"),
    "query": ("param", "remember", "op", "value"),
    "page_visits": ("where", "page", "op", "value", "hours"),
    "trait": ("trait", "op", "value", "choice"),
}
PART_LABELS: dict[str, str] = {
    "type": "Condition type",
    "field": "Fact",
    "score": "Score name",
    "trait": "Trait",
    "event": "Event",
    "category": "Category",
    "item": "Or item",
    "op": "Comparison",
    "value": "Value",
    "choice": "Value",
    "hours": "Within hours",
    "views": "Product views",
    "minutes": "Within minutes",
    "idle": "Idle minutes",
    "param": "Parameter",
    "remember": "Seen",
    "where": "Counting",
    "page": "Page",
}
# The fixed choices of the new row types' selects.
REMEMBER_CHOICES = [("page", "on this page"), ("visit", "on this page or earlier this visit")]
WHERE_CHOICES = [("page", "visits to that page"), ("section", "visits to it or any page below it")]
PARTS = tuple(PART_LABELS)
PLACEHOLDERS = {"category": "e.g. electronics", "item": "product id", "score": "e.g. churn_risk", "param": "e.g. promo", "page": "page id"}
OPERATOR_LABELS: dict[str, str] = {
    "eq": "is",
    "ne": "is not",
    "gt": "more than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
    "between": "between (low, high)",
    "in": "is one of (a, b, ...)",
    "not_in": "is none of (a, b, ...)",
    "contains": "contains",
    "contains_any": "includes one of (a, b, ...)",
    "present": "is present (or: false)",
    "matches": "matches the pattern",
}
FLAG_CHOICES = ("true", "false")
PERSONA_FIELD = "profile.persona"
BLANK_ROW: dict[str, str] = {
    "type": "count", "event": "page_view", "hours": "24", "op": "gte", "field": "context.device"
}
# A RuleError path inside one condition, mapped to the row input it concerns.
PATH_PARTS: dict[str, str] = {
    "field": "field",
    "op": "op",
    "value": "value",
    "count": "event",
    "count.event": "event",
    "count.category": "category",
    "count.item": "item",
    "count.within_hours": "hours",
    "count.page": "page",
    "count.section": "page",
    "avg_dwell": "category",
    "avg_dwell.category": "category",
    "sequence": "views",
    "sequence.views": "views",
    "sequence.within_minutes": "minutes",
    "cart_abandoned": "idle",
    "cart_abandoned.idle_minutes": "idle",
}
ERROR_PATH = re.compile(r"^\$(?:\.(?:all|any)\[(\d+)\])?(?:\.(.*))?\Z")
INTEGER = re.compile(r"^[+-]?\d+\Z")


@dataclass(frozen=True, slots=True)
class RuleInput:
    """What the rule widget posted: which view was active and what each view held."""

    mode: str = "builder"  # builder | json
    match: str = "all"  # all | any
    rows: tuple[Row, ...] = ()
    json_text: str = ""


@dataclass(frozen=True, slots=True)
class RowError:
    """A rule error placed on a builder row (0-based) and, when known, one of its inputs."""

    row: int
    part: str | None
    message: str

    @property
    def label(self) -> str:
        return f"{PART_LABELS[self.part]}: {self.message}" if self.part else self.message


@dataclass(slots=True)
class BuilderState:
    mode: str
    match: str
    rows: list[Row]
    json_text: str
    representable: bool = True
    row_error: RowError | None = None


# Rows -> rule ---------------------------------------------------------------------------------


def rows_to_rule(match: str, rows: Sequence[Row]) -> dict[str, Any]:
    """The rule the rows describe: one row is the condition itself, more are combined with
    `all` or `any`. Values that do not parse are passed on as text for the compiler to report."""
    conditions = [row_to_condition(row) for row in rows]
    if len(conditions) == 1:
        return conditions[0]
    return {"any" if match == "any" else "all": conditions}


def row_to_condition(row: Row) -> dict[str, Any]:
    kind = row.get("type", "")
    if kind == "field":
        name = row.get("field", "")
        return _with_value({"field": name, "op": row.get("op", "")}, _row_value(row, _kind_of(row)))
    if kind == "query":
        prefix = VISIT_QUERY_PREFIX if row.get("remember") == "visit" else QUERY_PREFIX
        return _with_value({"field": prefix + row.get("param", ""), "op": row.get("op", "")}, _row_value(row, TEXT))
    if kind == "page_visits":
        where = "section" if row.get("where") == "section" else "page"
        page = row.get("page", "").strip()
        spec = {"event": "page_view", where: int(page) if page.isdigit() else page, "within_hours": _number(row.get("hours", ""))}
        return {"count": spec, "op": row.get("op", ""), "value": _parse(row.get("value", ""), row.get("op", ""), NUMBER)}
    if kind == "trait":
        condition = {"field": TRAIT_PREFIX + row.get("trait", ""), "op": row.get("op", "")}
        return _with_value(condition, _row_value(row, _kind_of(row)))
    if kind == "score":
        name = SCORE_PREFIX + row.get("score", "")
        return {"field": name, "op": row.get("op", ""), "value": _parse(row.get("value", ""), row.get("op", ""), NUMBER)}
    if kind == "count":
        spec: dict[str, Any] = {"event": row.get("event", "")}
        for narrowing in ("category", "item"):
            if row.get(narrowing):
                spec[narrowing] = row[narrowing]
        spec["within_hours"] = _number(row.get("hours", ""))
        return {"count": spec, "op": row.get("op", ""), "value": _parse(row.get("value", ""), row.get("op", ""), NUMBER)}
    if kind == "avg_dwell":
        return {
            "avg_dwell": {"category": row.get("category", "")},
            "op": row.get("op", ""),
            "value": _parse(row.get("value", ""), row.get("op", ""), NUMBER),
        }
    if kind == "sequence":
        return {"sequence": {"views": _number(row.get("views", "")), "within_minutes": _number(row.get("minutes", ""))}}
    if kind == "cart_abandoned":
        return {"cart_abandoned": {"idle_minutes": _number(row.get("idle", ""))}}
    # An unknown type yields a node the compiler rejects with a message naming the choices.
    return {"type": kind}


def _with_value(condition: dict[str, Any], value: Any) -> dict[str, Any]:
    """A field condition with its value; "present" needs none (false asks for an absent one)."""
    if condition["op"] == "present":
        return {**condition, "value": False} if value in (False, "false") else condition
    return {**condition, "value": value}


def _kind_of(row: Row) -> str:
    if row.get("type") == "query":
        return TEXT
    if row.get("type") not in ("field", "trait"):
        return NUMBER
    spec = _row_field(row)
    return spec.kind if spec is not None else TEXT


def _row_field(row: Row) -> Field | None:
    """The rule field a field or CRM trait row names (None for other rows, or an unknown one)."""
    if row.get("type") == "trait":
        return TRAIT_FIELDS.get(row.get("trait", ""))
    return lookup(row.get("field")) if row.get("type") == "field" else None


def operators_of(row: Row) -> tuple[str, ...]:
    """The comparisons a row offers: a trait's by its kind, else its kind's."""
    spec = _row_field(row)
    return spec.operators if spec is not None and spec.operators else OPERATORS_BY_KIND[_kind_of(row)]


def choices_of(row: Row) -> tuple[str, ...]:
    """The values a row's select offers: a field's or a trait's choices, or true/false for a flag."""
    spec = _row_field(row)
    if spec is None:
        return ()
    if spec.kind == FLAG:
        return FLAG_CHOICES
    return spec.choices if row.get("type") == "trait" else field_choices(row.get("field"), spec.choices)


def declared_traits() -> dict[str, Field]:
    """The CRM traits rules may name, as declared now (Settings → CRM traits), by key."""
    from tailored.activation.traits import refresh_declarations

    refresh_declarations()
    return dict(sorted(TRAIT_FIELDS.items(), key=lambda item: item[1].label.lower()))


def field_choices(name: str, fixed: tuple[str, ...]) -> tuple[str, ...]:
    """A field's values to choose from; personas are the slugs training found (none before the
    first training: the value is then typed)."""
    if name == PERSONA_FIELD:
        return tuple(PersonaLabel.objects.order_by("slug").values_list("slug", flat=True))
    return fixed


def uses_choice(row: Row) -> bool:
    return bool(choices_of(row)) and row.get("op") in ("eq", "ne")


def _row_value(row: Row, kind: str) -> Any:
    raw = row.get("choice", "") if uses_choice(row) else row.get("value", "")
    return _parse(raw, row.get("op", ""), kind)


def _parse(raw: str, op: str, kind: str) -> Any:
    if op in ("in", "not_in", "between"):
        return [_scalar(item.strip(), kind) for item in raw.split(",") if item.strip()]
    return _scalar(raw.strip(), kind)


def _scalar(raw: str, kind: str) -> Any:
    if kind == NUMBER:
        return _number(raw)
    if kind == FLAG and raw in FLAG_CHOICES:
        return raw == "true"
    return raw


def _number(raw: str) -> Any:
    raw = raw.strip()
    if INTEGER.match(raw):
        return int(raw)
    try:
        number = float(raw)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw


# Rule -> rows ---------------------------------------------------------------------------------


def rule_to_rows(rule: object) -> tuple[str, list[dict[str, str]]] | None:
    """(match, rows) for a rule the builder can show, else None: nested groups, `not`, or
    anything the rows would not reproduce exactly (checked by translating back)."""
    if not isinstance(rule, dict):
        return None
    match = next((kind for kind in ("all", "any") if kind in rule), None)
    children = rule.get(match) if match else [rule]
    if not isinstance(children, list) or not children or (match and len(rule) != 1):
        return None
    rows = [condition_to_row(child) for child in children]
    if any(row is None for row in rows):
        return None
    rows = [row for row in rows if row is not None]
    match = match or "all"
    expected = children[0] if len(children) == 1 else rule
    if _canonical(rows_to_rule(match, rows)) != _canonical(expected) or not all(_offered(row) for row in rows):
        return None
    return match, rows


def condition_to_row(node: object) -> dict[str, str] | None:
    if not isinstance(node, dict):
        return None
    try:
        if "field" in node:
            name = node["field"]
            if isinstance(name, str) and name.startswith(SCORE_PREFIX):
                return {"type": "score", "score": name[len(SCORE_PREFIX):], "op": node.get("op"), "value": _format(node.get("value"))}
            value = _format(node.get("value"))
            if isinstance(name, str) and name.startswith(TRAIT_PREFIX):
                return {"type": "trait", "trait": name[len(TRAIT_PREFIX):], "op": node.get("op"), "value": value, "choice": value}
            if isinstance(name, str) and name.startswith((QUERY_PREFIX, VISIT_QUERY_PREFIX)):
                remember = "visit" if name.startswith(VISIT_QUERY_PREFIX) else "page"
                param = name.removeprefix(QUERY_PREFIX).removeprefix(VISIT_QUERY_PREFIX)
                return {"type": "query", "param": param, "remember": remember, "op": node.get("op"), "value": value}
            return {"type": "field", "field": name, "op": node.get("op"), "value": value, "choice": value}
        if "count" in node and ("page" in node["count"] or "section" in node["count"]):
            spec = node["count"]
            where = "section" if "section" in spec else "page"
            return {
                "type": "page_visits",
                "where": where,
                "page": _format(spec.get(where)),
                "hours": _format(spec.get("within_hours")),
                "op": node.get("op"),
                "value": _format(node.get("value")),
            }
        if "count" in node:
            spec = node["count"]
            return {
                "type": "count",
                "event": spec.get("event"),
                "category": spec.get("category", ""),
                "item": spec.get("item", ""),
                "hours": _format(spec.get("within_hours")),
                "op": node.get("op"),
                "value": _format(node.get("value")),
            }
        if "avg_dwell" in node:
            category = node["avg_dwell"].get("category")
            return {"type": "avg_dwell", "category": category, "op": node.get("op"), "value": _format(node.get("value"))}
        if "sequence" in node:
            spec = node["sequence"]
            return {"type": "sequence", "views": _format(spec.get("views")), "minutes": _format(spec.get("within_minutes"))}
        if "cart_abandoned" in node:
            return {"type": "cart_abandoned", "idle": _format(node["cart_abandoned"].get("idle_minutes"))}
    except (AttributeError, TypeError):
        return None
    return None


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_format(item) for item in value)
    return "" if value is None else str(value)


def _offered(row: Mapping[str, Any]) -> bool:
    """Whether every select in the row can show the row's value."""
    if not all(isinstance(row.get(part, ""), str) for part in PARTS):
        return False
    if row["type"] in TYPES and row["type"] not in ("sequence", "cart_abandoned") and row.get("op") not in operators_of(row):
        return False
    if row["type"] == "trait" and row.get("trait") not in declared_traits():
        return False
    if row["type"] == "field" and row.get("field") not in builder_fields():
        return False
    if row["type"] == "count" and row.get("event") not in EVENT_TYPES:
        return False
    return not uses_choice(row) or row.get("choice") in choices_of(row)


def _canonical(rule: object) -> str:
    # Compared as JSON: 1 and True, or 3 and 3.0, must not count as the same rule.
    return json.dumps(rule, sort_keys=True)


# Errors ----------------------------------------------------------------------------------------


def locate(error: RuleError, rows: Sequence[Row]) -> RowError | None:
    """The builder row (and input) a compile error points at, when the rows made the rule."""
    found = locate_path(error.path, rows)
    return RowError(found[0], found[1], error.message) if found is not None else None


def locate_path(path: str, rows: Sequence[Row]) -> tuple[int, str | None] | None:
    """(row, input) of a path into the rule the rows made (`$.all[1].count.category`), or None."""
    found = ERROR_PATH.match(path)
    if found is None or not rows:
        return None
    index, rest = found.group(1), found.group(2) or ""
    if len(rows) == 1:
        if index is not None:
            return None
        row = 0
    else:
        if index is None or int(index) >= len(rows):
            return None
        row = int(index)
    part = PATH_PARTS.get(re.sub(r"\[\d+\]$", "", rest))
    if part == "field" and rows[row].get("type") in ("score", "query", "trait"):
        part = {"score": "score", "query": "param", "trait": "trait"}[rows[row].get("type")]
    if part == "value" and uses_choice(rows[row]):
        part = "choice"
    return row, part


@dataclass(frozen=True, slots=True)
class PlacedWarnings:
    """A rule's value warnings: those on a builder row (by row), and the rest (JSON view)."""

    by_row: dict[int, list[str]]
    elsewhere: list[str]

    def as_json(self) -> list[dict[str, Any]]:
        placed = [{"row": row, "message": message} for row, messages in self.by_row.items() for message in messages]
        return placed + [{"row": None, "message": message} for message in self.elsewhere]


def place_warnings(warnings: Sequence[ValueWarning], rows: Sequence[Row]) -> PlacedWarnings:
    placed = PlacedWarnings({}, [])
    for warning in warnings:
        found = locate_path(warning.path, rows)
        if found is None:
            placed.elsewhere.append(f"{warning.path}: {warning.message}")
        else:
            placed.by_row.setdefault(found[0], []).append(warning.message)
    return placed


def rule_warnings(rule: object, rows: Sequence[Row] = ()) -> PlacedWarnings:
    """Warnings (not errors) for the values of a rule no visitor has ever had, placed on the
    builder rows that made the rule, if rows made it."""
    return place_warnings(value_warnings(rule), rows) if rule else PlacedWarnings({}, [])


def compile_errors(rule: object) -> RuleError | None:
    try:
        compile_rule(rule, known_events=EVENT_TYPES)
    except RuleError as error:
        return error
    return None


# Widget and field ------------------------------------------------------------------------------


class RuleBuilderWidget(forms.Widget):
    """Condition rows combined with all/any, and a raw JSON view of the same rule."""

    template_name = "personalization/widgets/rule_builder.html"
    row_template_name = "personalization/widgets/rule_row.html"

    class Media:
        # Wagtail's page chooser modal: page-visit rows pick their page with it.
        js = ["wagtailadmin/js/page-chooser-modal.js", "personalization/js/rule_builder.js"]
        css = {"all": ["personalization/css/rule_builder.css"]}

    def __init__(self, attrs=None, preview_url: str = "", values_url: str = ""):
        super().__init__(attrs)
        self.preview_url = preview_url
        self.values_url = values_url  # where the builder fetches a long picker (LAZY_KINDS)
        self.row_error: RowError | None = None

    def value_from_datadict(self, data, files, name) -> RuleInput | str | None:
        if f"{name}-mode" not in data:
            # A plain JSON post (no builder on the page), e.g. from a script.
            return data.get(name)
        key = re.compile(rf"^{re.escape(name)}-(\d+)-type\Z")
        indexes = sorted({int(found.group(1)) for found in map(key.match, data) if found})
        rows = tuple({part: str(data.get(f"{name}-{i}-{part}", "")).strip() for part in PARTS} for i in indexes)
        mode = "json" if data.get(f"{name}-mode") == "json" else "builder"
        match = "any" if data.get(f"{name}-match") == "any" else "all"
        return RuleInput(mode, match, rows, str(data.get(f"{name}-json", "")))

    def value_omitted_from_data(self, data, files, name) -> bool:
        return f"{name}-mode" not in data and name not in data

    def state(self, value: object) -> BuilderState:
        """What to show: the posted input as it was, or a stored rule as rows when possible."""
        if isinstance(value, RuleInput):
            return self._posted_state(value)
        if isinstance(value, str):
            try:
                value = loads_finite(value)
            except ValueError:
                return BuilderState("json", "all", [], value, representable=False)
        if value is None:
            return BuilderState("builder", "all", [dict(BLANK_ROW)], "")
        text = json.dumps(value, indent=2)
        translated = rule_to_rows(value)
        if translated is None:
            return BuilderState("json", "all", [], text, representable=False)
        match, rows = translated
        return BuilderState("builder", match, list(rows), text)

    def _posted_state(self, value: RuleInput) -> BuilderState:
        if value.mode == "builder":
            text = json.dumps(rows_to_rule(value.match, value.rows), indent=2) if value.rows else ""
            return BuilderState("builder", value.match, list(value.rows), text, row_error=self.row_error)
        try:
            translated = rule_to_rows(loads_finite(value.json_text))
        except ValueError:
            translated = None
        if translated is None:
            return BuilderState("json", value.match, [], value.json_text, representable=False)
        return BuilderState("json", translated[0], translated[1], value.json_text)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        state = self.state(value)
        widget_id = context["widget"]["attrs"].get("id") or f"id_{name}"
        error = state.row_error
        warnings = rule_warnings(state_rule(state), state.rows if state.mode == "builder" else ())
        context.update(
            builder=state,
            widget_id=widget_id,
            preview_url=self.preview_url,
            catalog=catalog(),
            catalog_id=f"{widget_id}-catalog",
            pickers=self.pickers(state),
            rows=[
                row_context(name, widget_id, i, row, error if error and error.row == i else None, warnings.by_row.get(i, ()))
                for i, row in enumerate(state.rows)
            ],
            warnings=warnings.elsewhere,
            blank_row=row_context(name, widget_id, "__i__", BLANK_ROW, None),
        )
        return context

    def pickers(self, state: BuilderState) -> list[tuple[str, list[tuple[str, str]], str]]:
        """(kind, options, url) per datalist: a long list is sent only when the rule uses it, else
        it is empty with the URL the builder fetches it from when an editor picks its field."""
        shown = {FIELD_KINDS.get(row.get("field", "")) for row in state.rows if row.get("type") == "field"}
        shown |= {kind for field, kind in FIELD_KINDS.items() if field in state.json_text}
        lazy = LAZY_KINDS - shown if self.values_url else frozenset()
        return [
            (kind, options, f"{self.values_url}?kind={kind}" if kind in lazy else "")
            for kind, options in picker_options(skip=lazy).items()
        ]

    def render_rows(self, name: str, rows: Iterable[Row], widget_id: str | None = None) -> str:
        """The rows alone (for the JSON-to-builder switch, which asks the server for them)."""
        widget_id = widget_id or f"id_{name}"
        html = []
        for i, row in enumerate(rows):
            context = {"row": row_context(name, widget_id, i, row, None)}
            html.append(self._render(self.row_template_name, context))
        return "".join(html)


def state_rule(state: BuilderState) -> object:
    """The rule the builder shows: its rows' rule, or the JSON view's text parsed (None if not)."""
    if state.mode == "builder":
        return rows_to_rule(state.match, state.rows) if state.rows else None
    try:
        return loads_finite(state.json_text)
    except ValueError:
        return None


class RuleField(forms.Field):
    """The segment rule, edited as builder rows or as JSON; cleans to the rule's JSON value.
    Whether the rule compiles is checked by the model (`Segment.clean`)."""

    widget = RuleBuilderWidget
    default_error_messages = {
        "required": _("Add at least one condition."),
        "invalid_json": _("Not valid JSON: %(error)s"),
    }

    def to_python(self, value: object) -> Any:
        if isinstance(value, RuleInput):
            if value.mode == "builder":
                return rows_to_rule(value.match, value.rows) if value.rows else None
            value = value.json_text
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return loads_finite(value)
            except ValueError as error:
                raise ValidationError(self.error_messages["invalid_json"], code="invalid_json", params={"error": error}) from None
        return value

    def prepare_value(self, value: object) -> object:
        return value

    def has_changed(self, initial: object, data: object) -> bool:
        try:
            return _canonical(self.to_python(data)) != _canonical(initial)
        except ValidationError:
            return True


class SegmentForm(WagtailAdminModelForm):
    """The segment form: places rule errors on the builder row they concern."""

    rule = RuleField(label=_("Rule"), help_text=_("Who is in the segment. Use the JSON view for nested groups."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rule_field_failed = False
        if "slug" in self.fields:  # made from the name when left empty (issue 16 item 3)
            self.fields["slug"].required = False
            self.fields["slug"].help_text = _("What rules and variants use. Left empty, it is made from the name.")
        viewset = getattr(self._meta.model, "snippet_viewset", None)
        if viewset is not None:
            with contextlib.suppress(NoReverseMatch):  # a viewset registered without its URLs
                self.fields["rule"].widget.preview_url = reverse(viewset.get_url_name("rule_preview"))
                self.fields["rule"].widget.values_url = reverse(viewset.get_url_name("rule_values"))

    def clean_slug(self) -> str:
        slug = self.cleaned_data.get("slug")
        if slug:
            return slug
        base = slugify(self.cleaned_data.get("name") or "")[:56] or "segment"
        taken = set(
            type(self.instance).objects.exclude(pk=self.instance.pk).filter(slug__startswith=base).values_list("slug", flat=True)
        )
        candidate, n = base, 1
        while candidate in taken:  # a second "Mobile visitors" becomes mobile-visitors-2
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _post_clean(self):
        # When the field itself failed (no rows, broken JSON), the instance keeps its old rule:
        # the model's verdict on that rule would only repeat or confuse the error.
        self._rule_field_failed = self.has_error("rule")
        super()._post_clean()
        if not self._rule_field_failed and self.has_error("rule"):
            self._place_rule_error()

    def _update_errors(self, errors):
        if self._rule_field_failed and hasattr(errors, "error_dict"):
            remaining = {name: messages for name, messages in errors.error_dict.items() if name != "rule"}
            if not remaining:
                return
            errors = ValidationError(remaining)
        super()._update_errors(errors)

    def _place_rule_error(self) -> None:
        posted = self["rule"].data
        error = compile_errors(self.instance.rule)
        if error is None or not isinstance(posted, RuleInput) or posted.mode != "builder":
            return
        row_error = locate(error, posted.rows)
        if row_error is None:
            return
        self.fields["rule"].widget.row_error = row_error
        message = _("Condition %(number)s is not valid: see the message next to it.") % {"number": row_error.row + 1}
        self._errors["rule"] = ErrorList([message])


# Rendering helpers -----------------------------------------------------------------------------


def catalog() -> dict[str, Any]:
    """What the builder's script needs to update a row: fields, operators, choices."""
    return {
        "fields": {
            name: {
                "kind": spec.kind,
                "choices": list(field_choices(name, spec.choices)),
                "help": spec.help,
                "picker": FIELD_KINDS.get(name),
            }
            for name, spec in builder_fields().items()
        },
        "ops": {kind: [[op, OPERATOR_LABELS[op]] for op in ops] for kind, ops in OPERATORS_BY_KIND.items()},
        # CRM traits (issue 20): each with its kind's operators and, for a list, its choices.
        "traits": {
            key: {
                "kind": spec.kind,
                "choices": list(spec.choices),
                "ops": [[op, OPERATOR_LABELS[op]] for op in spec.operators],
                "help": trait_help(spec),
            }
            for key, spec in declared_traits().items()
        },
        "flag": list(FLAG_CHOICES),
        "number": NUMBER,
        "pageChooserUrl": reverse("wagtailadmin_choose_page"),
    }


# Where the field's name does not read as words once its underscores are spaces (issue 16 item 6).
FIELD_LABELS = {
    "context.os": "Operating system",
    "context.local_hour": "Local hour (0-23)",
    "context.referrer_class": "Referrer type",
    "context.utm_source": "UTM source",
    "context.utm_medium": "UTM medium",
    "context.utm_campaign": "UTM campaign",
    "context.temperature_c": "Temperature (°C)",
    "context.local_time": "Local time",
    "context.referrer": "Referring URL",
    "context.referrer_host": "Referring site",
    "context.path": "This page's path",
    "context.landing_page": "Landing page of the visit",
    "user.logged_in": "Logged in",
    "user.is_staff": "Staff account",
    "user.groups": "Groups",
    "user.account_age_days": "Account age in days",
    "profile.sessions_7d": "Sessions in the last 7 days",
    "profile.session_converted": "Converted this session",
    "profile.average_scroll_depth": "Average scroll depth (%)",
}


def field_label(name: str) -> str:
    """A rule field's name in words: "context.utm_source" reads "UTM source"."""
    if name.startswith((QUERY_PREFIX, VISIT_QUERY_PREFIX)):
        parameter = name.removeprefix(QUERY_PREFIX).removeprefix(VISIT_QUERY_PREFIX)
        return f"Query parameter \u201c{parameter}\u201d" + (" seen this visit" if name.startswith(VISIT_QUERY_PREFIX) else "")
    if name.startswith((SITE_PREFIX, TRAIT_PREFIX)) and (spec := lookup(name)) is not None and spec.label:
        return spec.label
    return FIELD_LABELS.get(name) or name.partition(".")[2].replace("_", " ").capitalize()


TRAIT_KIND_WORDS = {"number": "a number", "flag": "yes or no", "text": "text"}


def trait_help(spec: Field) -> str:
    """What a trait row says under it: what kind of value the CRM sends."""
    if spec.choices:
        return f"{spec.label}: one of {', '.join(spec.choices)} (from your CRM)"
    return f"{spec.label}: {TRAIT_KIND_WORDS.get(spec.kind, spec.kind)} (from your CRM)"


def builder_fields() -> dict[str, Field]:
    """Every fact the builder offers: the built-in ones and those the site registered."""
    return {**FIELDS, **{SITE_PREFIX + name: spec for name, spec in SITE_FIELDS.items()}}


FIELD_GROUPS = {"context.": "Request", "user.": "Visitor's account", "profile.": "Profile", SITE_PREFIX: "This site's facts"}


def _field_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    groups: dict[str, list[tuple[str, str]]] = {group: [] for group in FIELD_GROUPS.values()}
    for name in builder_fields():
        group = next(label for prefix, label in FIELD_GROUPS.items() if name.startswith(prefix))
        groups[group].append((name, field_label(name)))
    return [(group, fields) for group, fields in groups.items() if fields]


def row_context(
    name: str, widget_id: str, index: int | str, row: Row, error: RowError | None, warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything the row template needs: each input with its options and picker, which inputs
    are shown, and the row's error and warnings."""
    kind = row.get("type") or "count"
    spec = _row_field(row)
    traits = declared_traits()
    options: dict[str, list[tuple[str | None, list[tuple[str, str]]]]] = {
        "type": [(None, list(TYPES.items()))],
        "field": _field_groups(),
        "event": [(None, [(event, event.replace("_", " ")) for event in sorted(EVENT_TYPES)])],
        "op": [(None, [(op, OPERATOR_LABELS[op]) for op in operators_of(row)])],
        "trait": [(None, [(key, trait.label) for key, trait in traits.items()])],
        "choice": [(None, [(choice, choice) for choice in choices_of(row)])],
        "remember": [(None, REMEMBER_CHOICES)],
        "where": [(None, WHERE_CHOICES)],
    }
    shown = set(PARTS_BY_TYPE.get(kind, ())) | {"type"}
    if uses_choice(row):
        shown.discard("value")
    else:
        shown.discard("choice")
    parts = []
    for part in PARTS:
        types = " ".join(t for t, used in PARTS_BY_TYPE.items() if part in used) if part != "type" else ""
        parts.append(
            {
                "key": part,
                "label": PART_LABELS[part],
                "name": f"{name}-{index}-{part}",
                "id": f"{widget_id}-{index}-{part}",
                "value": row.get(part, ""),
                "options": options.get(part),
                "number": part in ("hours", "views", "minutes", "idle"),
                "hidden": part not in shown,
                "types": types,
                "invalid": error is not None and error.part == part,
                "placeholder": PLACEHOLDERS.get(part, ""),
                "list": f"{widget_id}-list-{picker}" if (picker := picker_of(row, part)) else "",
                "chooser": part == "page",  # Wagtail's page chooser fills it
                "chosen": page_title(row.get("page", "")) if part == "page" else "",
            }
        )
    return {
        "index": index,
        "type": kind,
        "parts": parts,
        "error": error,
        "warnings": list(warnings),
        "help": _row_help(row, spec, traits),
    }


def _row_help(row: Row, spec: Field | None, traits: Mapping[str, Field]) -> str:
    if row.get("type") == "trait":
        return trait_help(spec) if spec is not None else (
            "" if traits else "No CRM traits are declared yet: add them in Settings → CRM traits."
        )
    return spec.help if spec is not None else ""


def page_title(page_id: str) -> str:
    """The title of the page a page-visits row names, shown beside its id."""
    from wagtail.models import Page

    if not str(page_id).isdigit():
        return ""
    return Page.objects.filter(pk=int(page_id)).values_list("title", flat=True).first() or ""


# The inputs that offer a picker (a datalist of known values), by kind (tailored.rule_values).
PART_PICKERS = {"category": CATEGORY, "item": ITEM, "score": SCORE}


def picker_of(row: Row, part: str) -> str | None:
    """The kind of values a row's input offers to pick from: fixed for the category, item and
    score inputs, the field's for a field's value (countries for context.country...)."""
    if part == "value":
        return FIELD_KINDS.get(row.get("field", "")) if row.get("type") == "field" else None
    return PART_PICKERS.get(part)

