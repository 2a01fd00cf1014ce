"""The values a segment rule compares (categories, items, countries, regions, personas, score
names): what the rule builder offers for each, and which of a rule's values no visitor has ever
had (issue 16 item 3). Such a value is a warning, never an error: a category may get its first
visitor tomorrow, but an editor should know that today the condition matches nobody.

Known values come from the site's pages (categories and products, see tailored.products), the
stored Event rows (what visitors did), the ISO lists (tailored.iso3166), PersonaLabel and the
current propensity model's metadata in the model registry (score names).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from tailored.core.fields import TEXTS, lookup
from tailored.ml import registry
from tailored.ml.scoring import PROPENSITY

from .iso3166 import COUNTRIES, REGIONS
from .models import Event, PersonaLabel
from .products import category_model, product_model

logger = logging.getLogger(__name__)

CATEGORY, ITEM, COUNTRY, REGION, PERSONA, SCORE = "category", "item", "country", "region", "persona", "score"
KINDS = (CATEGORY, ITEM, COUNTRY, REGION, PERSONA, SCORE)
# Rule fields whose values are one of the kinds above.
FIELD_KINDS = {
    "context.country": COUNTRY,
    "context.region": REGION,
    "profile.persona": PERSONA,
    "profile.preferences": CATEGORY,
    "profile.viewed_items": ITEM,
    "profile.cart_items": ITEM,
}
# Operators that compare whole values (`contains` is membership for list fields, a substring test
# otherwise; `matches` takes a pattern): only whole values can be looked up.
WHOLE_VALUE_OPS = frozenset({"eq", "ne", "in", "not_in"})
MAX_ITEM_OPTIONS = 1000  # a datalist of every product of a large catalog would be too long to send
MAX_SEEN_CATEGORIES = 200


@dataclass(frozen=True, slots=True)
class RuleValue:
    """One value a rule compares: where it is (a path like the compiler's), its kind, the value."""

    path: str
    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class ValueWarning:
    path: str
    kind: str
    value: str
    message: str


# The values in a rule ---------------------------------------------------------------------------


def rule_values(node: object, path: str = "$") -> list[RuleValue]:
    """Every looked-up value in a rule (any shape: a rule that does not compile gives what it can)."""
    if not isinstance(node, dict):
        return []
    for combinator in ("all", "any"):
        if isinstance(node.get(combinator), list):
            children = enumerate(node[combinator])
            return [value for i, child in children for value in rule_values(child, f"{path}.{combinator}[{i}]")]
    if "not" in node:
        return rule_values(node["not"], f"{path}.not")
    if "field" in node:
        return _field_values(node, path)
    found = []
    for condition, narrowing, kind in (("count", "category", CATEGORY), ("count", "item", ITEM), ("avg_dwell", "category", CATEGORY)):
        spec = node.get(condition)
        if isinstance(spec, dict) and isinstance(spec.get(narrowing), (str, int)) and spec[narrowing] != "":
            found.append(RuleValue(f"{path}.{condition}.{narrowing}", kind, str(spec[narrowing])))
    return found


def _field_values(node: dict, path: str) -> list[RuleValue]:
    name = node.get("field")
    if not isinstance(name, str):
        return []
    if name.startswith("score.") and len(name) > len("score."):
        return [RuleValue(f"{path}.field", SCORE, name[len("score."):])]
    kind, spec, op = FIELD_KINDS.get(name), lookup(name), node.get("op")
    if kind is None or spec is None or not (op in WHOLE_VALUE_OPS or (op == "contains" and spec.kind == TEXTS)):
        return []
    values = node.get("value")
    values = values if isinstance(values, list) else [values]
    return [RuleValue(f"{path}.value", kind, str(value)) for value in values if isinstance(value, (str, int)) and value != ""]


# Warnings ----------------------------------------------------------------------------------------


def value_warnings(rule: object) -> list[ValueWarning]:
    """A warning for each value of the rule that no visitor has ever had, in rule order. Costs
    one query per kind present (none for countries and regions)."""
    values = rule_values(rule)
    by_kind: dict[str, set[str]] = {kind: {v.value for v in values if v.kind == kind} for kind in KINDS}
    checks = {
        CATEGORY: _category_problems, ITEM: _item_problems, COUNTRY: _country_problems,
        REGION: _region_problems, PERSONA: _persona_problems, SCORE: _score_problems,
    }
    problems = {kind: checks[kind](wanted) if wanted else {} for kind, wanted in by_kind.items()}
    return [ValueWarning(v.path, v.kind, v.value, problems[v.kind][v.value]) for v in values if v.value in problems[v.kind]]


def _category_problems(wanted: set[str]) -> dict[str, str]:
    seen = set(Event.objects.filter(category__in=wanted).values_list("category", flat=True).distinct())
    model = category_model()
    pages = set(model.objects.filter(slug__in=wanted).values_list("slug", flat=True)) if model is not None else set()
    return _unseen(
        wanted - seen, pages,
        yet="No visitor has had category “{}” yet: no stored event is in it.",
        never="No visitor has had category “{}”: no stored event is in it, and no category page has that slug.",
    )


def _item_problems(wanted: set[str]) -> dict[str, str]:
    seen = set(Event.objects.filter(item__in=wanted).values_list("item", flat=True).distinct())
    model = product_model()
    ids = [int(value) for value in wanted if value.isdigit()]
    products = {str(pk) for pk in model.objects.filter(pk__in=ids).values_list("pk", flat=True)} if model is not None and ids else set()
    return _unseen(
        wanted - seen, products,
        yet="No visitor has had item “{}” yet: no stored event names it.",
        never="No visitor has had item “{}”: no stored event names it, and no product has that id.",
    )


def _unseen(unseen: set[str], pages: set[str], yet: str, never: str) -> dict[str, str]:
    """Problems of the values no stored event has. A value the site has a page for is one only
    once events are being stored at all: without the worker (the memory store) no visit is ever
    stored, and "no visitor has had it" would contradict the live count."""
    storing = Event.objects.exists()
    return {value: (yet if value in pages else never).format(value) for value in unseen if storing or value not in pages}


def _country_problems(wanted: set[str]) -> dict[str, str]:
    return {value: _code_problem(value, COUNTRIES, "an ISO 3166-1 country code, such as GB or US") for value in wanted if value not in COUNTRIES}


def _region_problems(wanted: set[str]) -> dict[str, str]:
    return {value: _code_problem(value, REGIONS, "an ISO 3166-2 region code, such as GB-ENG or US-CA") for value in wanted if value not in REGIONS}


def _code_problem(value: str, known: dict[str, str], what: str) -> str:
    if value.strip().upper() in known:
        return f"No visitor has “{value}”: codes are upper case, “{value.strip().upper()}”."
    return f"No visitor has “{value}”: it is not {what}."


def _persona_problems(wanted: set[str]) -> dict[str, str]:
    personas = dict(PersonaLabel.objects.values_list("slug", "active"))
    if not personas:
        return {value: f"No visitor has persona “{value}”: no persona exists yet (run manage.py tailored_train)." for value in wanted}
    active = ", ".join(sorted(slug for slug, is_active in personas.items() if is_active)) or "none"
    return {
        value: f"No visitor has persona “{value}”: the current persona model does not find it (it finds {active})."
        if value in personas
        else f"No visitor has persona “{value}”: no persona has that slug (training found {active})."
        for value in wanted
        if not personas.get(value)
    }


def _score_problems(wanted: set[str]) -> dict[str, str]:
    produced = score_names()
    if not produced:
        return {value: f"No visitor has a “{value}” score: no model produces scores yet (run manage.py tailored_train)." for value in wanted}
    listed = ", ".join(produced)
    return {value: f"No visitor has a “{value}” score: no model produces it (the models produce {listed})." for value in wanted if value not in produced}


def score_names() -> tuple[str, ...]:
    """The scores the current propensity model writes into profiles; none before the first
    training. Read from the model's metadata, so the admin never unpickles (or imports) the model."""
    metadata = current_metadata(PROPENSITY)
    metrics = metadata.get("metrics") if metadata else None
    return tuple(sorted(metrics)) if isinstance(metrics, dict) else ()


def current_metadata(name: str) -> dict[str, Any] | None:
    """metadata.json of a model's current version in the registry, or None."""
    models = registry.get_registry()
    version = models.current_version(name)
    if version is None:
        return None
    try:
        metadata = json.loads((models.root / name / version / registry.METADATA).read_text())
    except (OSError, ValueError) as error:
        logger.warning("could not read the metadata of model %r: %s", name, error)
        return None
    return metadata if isinstance(metadata, dict) else None


# What the builder offers ---------------------------------------------------------------------------


# Too long to send with every edit view (5,000 regions): the builder fetches it when first needed.
LAZY_KINDS = frozenset({REGION})


def picker_options(skip: Collection[str] = ()) -> dict[str, list[tuple[str, str]]]:
    """(value, label) pairs per kind, for the builder's datalists; the kinds in `skip` empty."""
    return {kind: [] if kind in skip else OPTION_SOURCES[kind]() for kind in KINDS}


def country_options() -> list[tuple[str, str]]:
    return list(COUNTRIES.items())


def region_options() -> list[tuple[str, str]]:
    return [(code, f"{name} ({COUNTRIES.get(code[:2], code[:2])})") for code, name in REGIONS.items()]


def persona_options() -> list[tuple[str, str]]:
    return list(PersonaLabel.objects.filter(active=True).order_by("slug").values_list("slug", "name"))


def score_options() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in score_names()]


def category_options() -> list[tuple[str, str]]:
    """The site's category pages; without a category model, the categories of stored events."""
    model = category_model()
    if model is None:
        seen = Event.objects.exclude(category="").values_list("category", flat=True).distinct().order_by("category")
        return [(slug, slug) for slug in seen[:MAX_SEEN_CATEGORIES]]
    return list(_live(model.objects.all()).order_by("title").values_list("slug", "title"))


def item_options() -> list[tuple[str, str]]:
    """Product ids with their titles (the first MAX_ITEM_OPTIONS by title)."""
    model = product_model()
    if model is None:
        return []
    products = _live(model.objects.all()).order_by("title").values_list("pk", "title")[:MAX_ITEM_OPTIONS]
    return [(str(pk), title) for pk, title in products]


OPTION_SOURCES: dict[str, Callable[[], list[tuple[str, str]]]] = {
    CATEGORY: category_options, ITEM: item_options, COUNTRY: country_options,
    REGION: region_options, PERSONA: persona_options, SCORE: score_options,
}


def _live(queryset):
    return queryset.filter(live=True) if hasattr(queryset.model, "live") else queryset
