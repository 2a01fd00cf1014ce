"""The rule language: a JSON condition tree, compiled once (when a segment is saved or loaded)
into a predicate that is evaluated many times per second.

A rule is one of:

    {"all": [rule, ...]}   {"any": [rule, ...]}   {"not": rule}
    {"field": "context.device", "op": "eq", "value": "mobile"}
    {"count": {"event": "page_view", "category": "electronics", "within_hours": 24},
     "op": "gte", "value": 3}          ("category" or "item" narrow the count; both optional)

Compilation checks every node and raises RuleError naming the path into the rule
("$.all[1].op: unknown operator 'eqq'"), so editors see exactly what to fix.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .types import (
    DAYPARTS,
    DEVICES,
    ITEM_COUNTED_EVENTS,
    WEEKDAYS,
    Context,
    Profile,
    Window,
    counter_keys,
)
from .windows import MAX_WINDOW_HOURS

Predicate = Callable[[Profile, Context, float], bool]

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
MEMBERSHIP = ("in", "not_in")
ORDERING = ("gt", "gte", "lt", "lte")
EVENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class RuleError(ValueError):
    """A rule that cannot be compiled; `path` points into the JSON (e.g. `$.all[1].op`)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: type
    read: Callable[[Profile, Context], Any]
    choices: tuple[str, ...] = ()


FIELDS: dict[str, FieldSpec] = {
    "context.device": FieldSpec(str, lambda p, c: c.device, DEVICES),
    "context.daypart": FieldSpec(str, lambda p, c: c.daypart, DAYPARTS),
    "context.weekday": FieldSpec(str, lambda p, c: c.weekday, WEEKDAYS),
    "profile.page_views": FieldSpec(int, lambda p, c: p.page_views),
}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A validated rule and its predicate. Evaluation never raises. `windows` lists the windowed
    counts the rule reads, so the profile store fetches exactly those in the request's round trip."""

    source: Mapping[str, Any]
    predicate: Predicate
    windows: frozenset[Window] = frozenset()

    def matches(self, profile: Profile, context: Context, now: float) -> bool:
        return self.predicate(profile, context, now)


@dataclass(slots=True)
class _Compiler:
    known_events: frozenset[str] | None
    windows: set[Window]


def compile_rule(rule: object, known_events: Iterable[str] | None = None) -> CompiledRule:
    """Validate `rule` and build its predicate; raises RuleError on the first problem.
    `known_events` (the event registry) lets counts name only event types that exist."""
    compiler = _Compiler(frozenset(known_events) if known_events is not None else None, set())
    predicate = _compile(rule, "$", compiler)
    return CompiledRule(source=rule, predicate=predicate, windows=frozenset(compiler.windows))  # type: ignore[arg-type]


def _compile(node: object, path: str, compiler: _Compiler) -> Predicate:
    if not isinstance(node, dict):
        raise RuleError(path, f"a condition must be an object, got {type(node).__name__}")
    if "all" in node or "any" in node:
        return _compile_combinator(node, path, compiler)
    if "not" in node:
        _only_keys(node, {"not"}, path)
        inner = _compile(node["not"], f"{path}.not", compiler)
        return lambda p, c, now: not inner(p, c, now)
    if "field" in node:
        return _compile_field(node, path)
    if "count" in node:
        return _compile_count(node, path, compiler)
    raise RuleError(path, "expected one of 'all', 'any', 'not', 'field' or 'count'")


def _compile_combinator(node: dict, path: str, compiler: _Compiler) -> Predicate:
    name = "all" if "all" in node else "any"
    _only_keys(node, {name}, path)
    children = node[name]
    if not isinstance(children, list) or not children:
        raise RuleError(f"{path}.{name}", "needs a non-empty list of conditions")
    compiled = tuple(_compile(child, f"{path}.{name}[{i}]", compiler) for i, child in enumerate(children))
    if name == "all":
        return lambda p, c, now: all(pred(p, c, now) for pred in compiled)
    return lambda p, c, now: any(pred(p, c, now) for pred in compiled)


def _compile_field(node: dict, path: str) -> Predicate:
    _only_keys(node, {"field", "op", "value"}, path)
    name = node["field"]
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise RuleError(f"{path}.field", f"unknown field {name!r}; known: {', '.join(FIELDS)}")
    test = _comparison(node, path, spec.kind, spec.choices)
    read = spec.read
    return lambda p, c, now: test(read(p, c))


def _compile_count(node: dict, path: str, compiler: _Compiler) -> Predicate:
    _only_keys(node, {"count", "op", "value"}, path)
    spec, spec_path = node["count"], f"{path}.count"
    if not isinstance(spec, dict):
        raise RuleError(spec_path, "must be an object with 'event', 'within_hours' and optionally 'category' or 'item'")
    _only_keys(spec, {"event", "category", "item", "within_hours"}, spec_path)
    event = spec.get("event")
    if not isinstance(event, str) or not EVENT_NAME.match(event):
        raise RuleError(f"{spec_path}.event", "must be an event type name")
    if compiler.known_events is not None and event not in compiler.known_events:
        raise RuleError(f"{spec_path}.event", f"unknown event type {event!r}; known: {', '.join(sorted(compiler.known_events))}")
    narrowing = {name: spec[name] for name in ("category", "item") if name in spec}
    if len(narrowing) > 1:
        raise RuleError(spec_path, "narrow a count by 'category' or by 'item', not both")
    for name, value in narrowing.items():
        if not isinstance(value, str) or not EVENT_NAME.match(value):
            raise RuleError(f"{spec_path}.{name}", f"must be a {name} slug or id")
    if "item" in narrowing and event not in ITEM_COUNTED_EVENTS:
        raise RuleError(f"{spec_path}.item", f"per-item counts exist for {', '.join(sorted(ITEM_COUNTED_EVENTS))} only")
    hours = spec.get("within_hours")
    if not _is_int(hours) or not 1 <= hours <= MAX_WINDOW_HOURS:
        raise RuleError(f"{spec_path}.within_hours", f"must be a whole number of hours, 1 to {MAX_WINDOW_HOURS}")
    window = Window(counter_keys(event, narrowing.get("category"), narrowing.get("item"))[-1], hours)
    compiler.windows.add(window)
    test = _comparison(node, path, int)
    return lambda p, c, now: test(p.count_within(window))


def _comparison(node: dict, path: str, kind: type, choices: tuple[str, ...] = ()) -> Callable[[Any], bool]:
    op = node.get("op")
    value = node.get("value")
    if op in MEMBERSHIP:
        if not isinstance(value, list) or not value:
            raise RuleError(f"{path}.value", f"'{op}' needs a non-empty list")
        for i, item in enumerate(value):
            _check_value(item, kind, choices, f"{path}.value[{i}]")
        members = frozenset(value)
        return (lambda v: v in members) if op == "in" else (lambda v: v not in members)
    if op not in COMPARISONS:
        known = ", ".join([*COMPARISONS, *MEMBERSHIP])
        raise RuleError(f"{path}.op", f"unknown operator {op!r}; known: {known}")
    if op in ORDERING and kind is str:
        raise RuleError(f"{path}.op", f"'{op}' compares numbers; this field holds text")
    _check_value(value, kind, choices, f"{path}.value")
    compare = COMPARISONS[op]
    # A missing fact (None) never satisfies an ordering, and only equals nothing.
    return lambda v: v is not None and compare(v, value)


def _check_value(value: object, kind: type, choices: tuple[str, ...], path: str) -> None:
    if kind is int and not _is_int(value):
        raise RuleError(path, f"must be a whole number, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise RuleError(path, f"must be text, got {value!r}")
    if choices and value not in choices:
        raise RuleError(path, f"must be one of {', '.join(choices)}, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _only_keys(node: dict, allowed: set[str], path: str) -> None:
    unexpected = sorted(set(node) - allowed)
    if unexpected:
        raise RuleError(f"{path}.{unexpected[0]}", f"unexpected key; allowed here: {', '.join(sorted(allowed))}")
