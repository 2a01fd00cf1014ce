"""The rule language: a JSON condition tree, compiled once (when a segment is saved or loaded)
into a tree of conditions that is evaluated many times per second.

A rule is one of:

    {"all": [rule, ...]}   {"any": [rule, ...]}   {"not": rule}
    {"field": "context.device", "op": "eq", "value": "mobile"}          (fields: core.fields)
    {"count": {"event": "page_view", "category": "electronics", "within_hours": 24},
     "op": "gte", "value": 3}            (optionally narrowed by one "category", "item",
                                          "page" (that page) or "section" (it or any page below))
    {"avg_dwell": {"category": "books"}, "op": "gte", "value": 30}       (seconds per visit)
    {"sequence": {"views": 3, "within_minutes": 10}}   (at least 3 product views in 10 minutes)
    {"cart_abandoned": {"idle_minutes": 60}}   (cart not empty, unchanged 60 min, not bought)

Fields include `trait.<key>`, the CRM traits a site declares (issue 20): a trait takes the
operators of its kind (text: eq, in, contains, present; number: eq, gt, gte, lt, lte, between,
present; yes/no: eq; one of a list: eq, in, present), and naming an undeclared one is an error.

Operators: eq, ne, in, not_in, gt, gte, lt, lte, between ([low, high], inclusive; on an hour or a
time of day low > high crosses midnight), contains (substring, or membership for list fields),
contains_any (a list field holding one of the values), present (a value is there: true, or
absent: false) and matches (a regular expression, at most 200 characters, searched in at most 500
characters of the value). Times of day are "HH:MM". Numbers are finite: NaN and the infinities
are refused (nothing compares with NaN, and no database's JSON column stores either).

Compilation checks every node and raises RuleError naming the path into the rule
("$.all[1].op: unknown operator 'eqq'"), so editors see exactly what to fix. A compiled rule
also explains itself: which conditions held and the value each one saw.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .context import MINUTES_PER_DAY, clock_minutes
from .fields import (
    FIELDS,
    FLAG,
    NUMBER,
    QUERY_PREFIX,
    SCORE_PREFIX,
    TEXT,
    TEXTS,
    TIME,
    TRAIT_FIELDS,
    TRAIT_PREFIX,
    VISIT_QUERY_PREFIX,
    Field,
    Reader,
    lookup,
)
from .types import ITEM_COUNTED_EVENTS, Context, Profile, Window, counter_key
from .windows import MAX_WINDOW_HOURS

Test = Callable[[Any], bool]
EVENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
MAX_PATTERN = 200
MAX_MATCHED_TEXT = 500
OPERATORS_BY_KIND = {
    NUMBER: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in"),
    TEXT: ("eq", "ne", "in", "not_in", "contains", "matches", "present"),
    FLAG: ("eq", "ne"),
    TEXTS: ("contains", "contains_any", "present"),
    TIME: ("gte", "lt", "lte", "gt", "between", "eq", "ne"),
}
ORDERED = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


class RuleError(ValueError):
    """A rule that cannot be compiled; `path` points into the JSON (e.g. `$.all[1].op`)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class Condition:
    """A compiled node. `holds` is the hot path; `explain` reports what each leaf saw."""

    source: Mapping[str, Any]

    def holds(self, profile: Profile, context: Context, now: float) -> bool:
        raise NotImplementedError

    def explain(self, profile: Profile, context: Context, now: float) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(slots=True)
class Combination(Condition):
    source: Mapping[str, Any]
    kind: str  # all | any | not
    children: tuple[Condition, ...]

    def holds(self, profile: Profile, context: Context, now: float) -> bool:
        if self.kind == "all":
            return all(child.holds(profile, context, now) for child in self.children)
        if self.kind == "any":
            return any(child.holds(profile, context, now) for child in self.children)
        return not self.children[0].holds(profile, context, now)

    def explain(self, profile: Profile, context: Context, now: float) -> dict[str, Any]:
        children = [child.explain(profile, context, now) for child in self.children]
        return {"condition": self.kind, "matched": self.holds(profile, context, now), "children": children}


@dataclass(slots=True)
class Leaf(Condition):
    source: Mapping[str, Any]
    read: Reader
    test: Test
    window: Window | None = None  # the windowed count it reads, if that is what it reads
    # The test as (operator, operand) when it is one of the plain comparisons `test` makes
    # (for compiled segment sets, which write it inline); None for regular expressions.
    compare: tuple[str, Any] | None = None
    # What `read` reads, as an expression over p, c and now with {0}, {1}, ... standing for the
    # objects that follow (bound by compiled segment sets, never written into their source):
    # ("p.average_dwell({0})", ("books",)). Two leaves with equal access read the same value.
    # None: compiled sets call `read` (and a count reads its `window`).
    access: tuple[str, tuple[Any, ...]] | None = None

    def holds(self, profile: Profile, context: Context, now: float) -> bool:
        return self.test(self.read(profile, context, now))

    def explain(self, profile: Profile, context: Context, now: float) -> dict[str, Any]:
        seen = self.read(profile, context, now)
        return {"condition": dict(self.source), "saw": _plain(seen), "matched": self.test(seen)}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A validated rule. Evaluation never raises. `windows` lists the windowed counts the rule
    reads, so the profile store fetches exactly those in the request's one round trip."""

    source: Mapping[str, Any]
    root: Condition
    windows: frozenset[Window] = frozenset()
    fields: frozenset[str] = frozenset()  # the `field` names it reads (user.* facts cost a query)

    def matches(self, profile: Profile, context: Context, now: float) -> bool:
        return self.root.holds(profile, context, now)

    def explain(self, profile: Profile, context: Context, now: float) -> dict[str, Any]:
        return self.root.explain(profile, context, now)


@dataclass(slots=True)
class _Compiler:
    known_events: frozenset[str] | None
    windows: set[Window]
    fields: set[str]
    traits: Mapping[str, Field] | None = None  # None: the declared TRAIT_FIELDS


def compile_rule(
    rule: object, known_events: Iterable[str] | None = None, traits: Mapping[str, Field] | None = None
) -> CompiledRule:
    """Validate `rule` and build its condition tree; raises RuleError on the first problem.
    `known_events` (the event registry) lets counts name only event types that exist. `traits`
    (by key) replaces the declared traits for this compilation only: the admin asks whether a
    trait declaration being edited would break a rule before it saves it, without declaring it
    to every other request of the process meanwhile."""
    events = frozenset(known_events) if known_events is not None else None
    compiler = _Compiler(events, set(), set(), traits)
    root = _compile(rule, "$", compiler)
    return CompiledRule(source=rule, root=root, windows=frozenset(compiler.windows), fields=frozenset(compiler.fields))  # type: ignore[arg-type]


def _compile(node: object, path: str, compiler: _Compiler) -> Condition:
    if not isinstance(node, dict):
        raise RuleError(path, f"a condition must be an object, got {type(node).__name__}")
    for kind in ("all", "any"):
        if kind in node:
            _only_keys(node, {kind}, path)
            children = node[kind]
            if not isinstance(children, list) or not children:
                raise RuleError(f"{path}.{kind}", "needs a non-empty list of conditions")
            compiled = tuple(_compile(child, f"{path}.{kind}[{i}]", compiler) for i, child in enumerate(children))
            return Combination(node, kind, compiled)
    if "not" in node:
        _only_keys(node, {"not"}, path)
        return Combination(node, "not", (_compile(node["not"], f"{path}.not", compiler),))
    for name, build in LEAVES.items():
        if name in node:
            return build(node, path, compiler)
    known = ", ".join(["all", "any", "not", *LEAVES])
    raise RuleError(path, f"expected one of {known}")


def _field(node: dict, path: str, compiler: _Compiler) -> Condition:
    _only_keys(node, {"field", "op", "value"}, path)
    spec = _lookup(node["field"], compiler)
    if spec is None:
        raise RuleError(f"{path}.field", _unknown_field(node["field"], compiler.traits))
    test, compare = _comparison(node, path, spec.kind, spec.choices, spec.period, spec.operators)
    compiler.fields.add(node["field"])
    return Leaf(node, spec.read, test, compare=compare, access=_field_access(node["field"], spec))


# The fields whose reader is an attribute (or one method call) of the profile or the context,
# as that expression: compiled segment sets write these reads inline, without the reader's call.
# tests/core/test_compiled_segments.py checks each against the field's own reader.
FIELD_ACCESS: dict[str, str] = {
    **{f"context.{name}": f"c.{name}" for name in (
        "device", "browser", "os", "daypart", "weekday", "local_hour", "country", "region", "city", "referrer_class",
        "referrer", "referrer_host", "path", "utm_source", "utm_medium", "utm_campaign", "locale", "weather",
        "temperature_c",
    )},
    "context.local_time": "c.local_minute",
    "user.logged_in": "c.logged_in",
    "user.is_staff": "c.is_staff",
    "user.groups": "c.user_groups",
    "user.account_age_days": "c.account_age_days",
    **{f"profile.{name}": f"p.{name}" for name in (
        "page_views", "sessions", "session_content_views", "session_converted", "purchases", "lifetime_value",
        "average_scroll_depth", "recent_searches", "preferences", "persona",
    )},
    "profile.sessions_7d": "p.sessions_within(604800, now)",
}


def _field_access(name: str, spec: Field) -> tuple[str, tuple[Any, ...]] | None:
    if name in FIELD_ACCESS and FIELDS.get(name) is spec:  # the registered field, not a replacement
        return FIELD_ACCESS[name], ()
    if name.startswith(SCORE_PREFIX):
        return "p.scores.get({0})", (name[len(SCORE_PREFIX):],)
    if name.startswith(QUERY_PREFIX):
        return "c.query.get({0})", (name[len(QUERY_PREFIX):],)
    if name.startswith(VISIT_QUERY_PREFIX):  # fields._parameter's `remembered`
        return REMEMBERED_ACCESS, (name[len(VISIT_QUERY_PREFIX):],)
    return None


REMEMBERED_ACCESS = "(c.query.get({0}) or c.session_query.get({0}) or (p.visit_query.get({0}) if p.in_visit(now) else None))"
# A sequence's read (compiled sets count several windows of views in one pass over the items).
SEQUENCE_ACCESS = "p.items_viewed_within({0}, now)"


def _lookup(name: object, compiler: _Compiler) -> Field | None:
    """The field a leaf names; a trait from the compiler's own declarations when it has them."""
    if compiler.traits is not None and isinstance(name, str) and name.startswith(TRAIT_PREFIX):
        return compiler.traits.get(name[len(TRAIT_PREFIX):])
    return lookup(name)


def _unknown_field(name: object, traits: Mapping[str, Field] | None = None) -> str:
    if isinstance(name, str) and name.startswith(TRAIT_PREFIX):
        declared = ", ".join(sorted(TRAIT_FIELDS if traits is None else traits)) or "none yet"
        return f"no trait {name[len(TRAIT_PREFIX):]!r} is declared (traits declared: {declared})"
    return f"unknown field {name!r}; see the field list in the docs"


COUNT_NARROWINGS = ("category", "item", "page", "section")


def _count(node: dict, path: str, compiler: _Compiler) -> Condition:
    _only_keys(node, {"count", "op", "value"}, path)
    spec, spec_path = _spec(node, "count", path, {"event", *COUNT_NARROWINGS, "within_hours"})
    event = spec.get("event")
    if not isinstance(event, str) or not EVENT_NAME.match(event):
        raise RuleError(f"{spec_path}.event", "must be an event type name")
    if compiler.known_events is not None and event not in compiler.known_events:
        raise RuleError(f"{spec_path}.event", f"unknown event type {event!r}; known: {', '.join(sorted(compiler.known_events))}")
    narrowing = {name: spec[name] for name in COUNT_NARROWINGS if name in spec}
    if len(narrowing) > 1:
        raise RuleError(spec_path, f"narrow a count by one of {', '.join(COUNT_NARROWINGS)}, not several")
    name, value = next(iter(narrowing.items()), (None, None))
    if name is not None:
        value = _narrowing_value(name, value, event, f"{spec_path}.{name}")
    hours = _whole(spec.get("within_hours"), f"{spec_path}.within_hours", 1, MAX_WINDOW_HOURS, "hours")
    window = _interned(Window(counter_key(event, name, value), hours))
    compiler.windows.add(window)
    test, compare = _comparison(node, path, NUMBER)
    return Leaf(node, lambda p, c, now: p.count_within(window), test, window, compare)


_WINDOWS: dict[Window, Window] = {}


def _interned(window: Window) -> Window:
    """One Window object for equal windows, across rules: the profile store keys its counts by
    the segment set's windows, so each rule's lookup then finds its key by identity, with no
    call of Window.__eq__ (bounded: rules are few; beyond that, a fresh object is as correct)."""
    found = _WINDOWS.get(window)
    if found is not None:
        return found
    if len(_WINDOWS) < 10_000:
        _WINDOWS[window] = window
    return window


def _narrowing_value(name: str, value: object, event: str, path: str) -> str:
    """A count's narrowing as its counter names it. Ids may be numbers or text (19 or "19")."""
    if _is_whole(value) and name != "category":
        value = str(int(value))  # type: ignore[arg-type]
    if not isinstance(value, str) or not EVENT_NAME.match(value):
        raise RuleError(path, f"must be a {name} slug or id")
    if name == "item" and event not in ITEM_COUNTED_EVENTS:
        raise RuleError(path, f"per-item counts exist for {', '.join(sorted(ITEM_COUNTED_EVENTS))} only")
    if name in ("page", "section") and event != "page_view":
        raise RuleError(path, "page and section counts exist for page_view only")
    return value


def _avg_dwell(node: dict, path: str, compiler: _Compiler) -> Condition:
    _only_keys(node, {"avg_dwell", "op", "value"}, path)
    spec, spec_path = _spec(node, "avg_dwell", path, {"category"})
    category = spec.get("category")
    if not isinstance(category, str) or not EVENT_NAME.match(category):
        raise RuleError(f"{spec_path}.category", "must be a category slug")
    test, compare = _comparison(node, path, NUMBER)
    return Leaf(node, lambda p, c, now: p.average_dwell(category), test, compare=compare, access=(AVERAGE_DWELL_ACCESS, (category,)))


# Profile.average_dwell written out: compiled sets read it without a method call (five of
# bench/segments.py's 100 segments read one; the calls were about 3% of the set's time).
AVERAGE_DWELL_ACCESS = "(_d[0] / _d[1] if (_d := p.dwell.get({0})) is not None and _d[1] else None)"


def _sequence(node: dict, path: str, compiler: _Compiler) -> Condition:
    _only_keys(node, {"sequence"}, path)
    spec, spec_path = _spec(node, "sequence", path, {"views", "within_minutes"})
    views = _whole(spec.get("views"), f"{spec_path}.views", 1, 50, "product views")
    seconds = 60 * _whole(spec.get("within_minutes"), f"{spec_path}.within_minutes", 1, 7 * 24 * 60, "minutes")
    return Leaf(
        node, lambda p, c, now: p.items_viewed_within(seconds, now), lambda seen: seen >= views, compare=("gte", views),
        access=(SEQUENCE_ACCESS, (seconds,)),
    )


def _cart_abandoned(node: dict, path: str, compiler: _Compiler) -> Condition:
    _only_keys(node, {"cart_abandoned"}, path)
    spec, spec_path = _spec(node, "cart_abandoned", path, {"idle_minutes"})
    idle = 60 * _whole(spec.get("idle_minutes"), f"{spec_path}.idle_minutes", 1, 90 * 24 * 60, "minutes")
    return Leaf(
        node, _cart_idle_seconds, lambda seen: seen is not None and seen >= idle, compare=("gte", idle),
        access=("{0}(p, c, now)", (_cart_idle_seconds,)),  # one read, whatever the idle minutes
    )


def _cart_idle_seconds(p: Profile, c: Context, now: float) -> float | None:
    """How long an abandoned cart has been left: None when empty, or bought since it changed."""
    bought_since = p.last_purchase_at is not None and p.cart_updated_at is not None and p.last_purchase_at >= p.cart_updated_at
    if not p.cart or p.cart_updated_at is None or bought_since:
        return None
    return now - p.cart_updated_at


LEAVES: dict[str, Callable[[dict, str, _Compiler], Condition]] = {
    "field": _field,
    "count": _count,
    "avg_dwell": _avg_dwell,
    "sequence": _sequence,
    "cart_abandoned": _cart_abandoned,
}


def _comparison(
    node: dict, path: str, kind: str, choices: tuple[str, ...] = (), period: int | None = None,
    operators: tuple[str, ...] = (),
) -> tuple[Test, tuple[str, Any] | None]:
    """The leaf's test, and the same test as (operator, operand) for compiled segment sets
    (None for a regular expression, which they call as it is). `operators` narrows the kind's."""
    op, value = node.get("op"), node.get("value")
    allowed = operators or OPERATORS_BY_KIND[kind]
    if op not in allowed:
        raise RuleError(f"{path}.op", f"unknown operator {op!r} for this {kind} condition; use one of {', '.join(allowed)}")
    value_path = f"{path}.value"
    if op == "present":
        wanted = node.get("value", True)
        if not isinstance(wanted, bool):
            raise RuleError(value_path, "'present' takes true (has a value), false (has none) or no value")
        return (lambda v: (v is not None and v != "" and v != ()) is wanted), ("present", wanted)
    if op in ("in", "not_in", "contains_any"):
        return _membership(op, value, value_path, TEXT if op == "contains_any" else kind, choices)
    if op == "between":
        return _between(value, value_path, kind, period)
    if op == "contains":
        if not isinstance(value, str) or not value:
            raise RuleError(value_path, "'contains' needs a non-empty text")
        return (lambda v: v is not None and value in v), (op, value)
    if op == "matches":
        return _regex_test(value, value_path), None
    operand = _operand(value, kind, choices, value_path)
    if op in ORDERED:
        compare = ORDERED[op]
        return (lambda v: v is not None and compare(v, operand)), (op, operand)
    return ((lambda v: v == operand) if op == "eq" else (lambda v: v != operand)), (op, operand)


def _membership(op: str, value: object, path: str, kind: str, choices: tuple[str, ...]) -> tuple[Test, tuple[str, Any]]:
    if not isinstance(value, list) or not value:
        raise RuleError(path, f"'{op}' needs a non-empty list")
    members = frozenset(_operand(item, kind, choices, f"{path}[{i}]") for i, item in enumerate(value))
    if op == "contains_any":  # a list field holding at least one of the values
        return (lambda v: v is not None and not members.isdisjoint(v)), (op, members)
    return ((lambda v: v in members) if op == "in" else (lambda v: v not in members)), (op, members)


def _between(value: object, path: str, kind: str, period: int | None) -> tuple[Test, tuple[str, Any]]:
    """Inclusive [low, high]. On a cyclic field (an hour, a time of day) low may exceed high: the
    range then crosses midnight (22 to 2 holds at 23 and at 1, not at 3)."""
    if kind == TIME:
        bounds = [clock_minutes(v) for v in value] if isinstance(value, list) and len(value) == 2 else [None]
        if None in bounds:
            raise RuleError(path, "'between' needs [from, to] as times of day, e.g. [\"22:00\", \"02:00\"]")
        low, high = bounds
        period = MINUTES_PER_DAY
    elif not isinstance(value, list) or len(value) != 2 or not all(_is_number(v) for v in value):
        raise RuleError(path, "'between' needs [low, high], two finite numbers (not NaN or Infinity)")
    else:
        low, high = value
    if low <= high:
        return (lambda v: v is not None and low <= v <= high), ("between", (low, high))
    if period is None:
        raise RuleError(path, "'between' needs [low, high] with low <= high")
    if not 0 <= high < low < period:
        raise RuleError(path, f"a range crossing midnight needs values from 0 to {period - 1}")
    return (lambda v: v is not None and (v >= low or v <= high)), ("around", (low, high))


def _regex_test(pattern: object, path: str) -> Test:
    if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN:
        raise RuleError(path, f"'matches' needs a regular expression of 1 to {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise RuleError(path, f"not a valid regular expression: {error}") from None
    return lambda v: isinstance(v, str) and compiled.search(v[:MAX_MATCHED_TEXT]) is not None


def _operand(value: object, kind: str, choices: tuple[str, ...], path: str) -> Any:
    """A checked comparison value, in the form the field reads (minutes for a time of day)."""
    _check_value(value, kind, choices, path)
    return clock_minutes(value) if kind == TIME else value


def _check_value(value: object, kind: str, choices: tuple[str, ...], path: str) -> None:
    if kind == TIME and clock_minutes(value) is None:
        raise RuleError(path, f"must be a time of day such as \"08:30\", got {value!r}")
    if kind == NUMBER and _is_non_finite(value):
        raise RuleError(path, f"must be a finite number (not NaN or Infinity), got {value!r}")
    if kind == NUMBER and not _is_number(value):
        raise RuleError(path, f"must be a number, got {value!r}")
    if kind == TEXT and not isinstance(value, str):
        raise RuleError(path, f"must be text, got {value!r}")
    if kind == FLAG and not isinstance(value, bool):
        raise RuleError(path, f"must be true or false, got {value!r}")
    if choices and value not in choices:
        raise RuleError(path, f"must be one of {', '.join(choices)}, got {value!r}")


def _spec(node: dict, name: str, path: str, allowed: set[str]) -> tuple[dict, str]:
    spec, spec_path = node[name], f"{path}.{name}"
    if not isinstance(spec, dict):
        raise RuleError(spec_path, f"must be an object with {', '.join(sorted(allowed))}")
    _only_keys(spec, allowed, spec_path)
    return spec, spec_path


def _whole(value: object, path: str, low: int, high: int, unit: str) -> int:
    if not _is_whole(value) or not low <= value <= high:  # type: ignore[operator]
        raise RuleError(path, f"must be a whole number of {unit}, {low} to {high}")
    return int(value)  # type: ignore[arg-type]


def _is_number(value: object) -> bool:
    """A finite int or float. NaN and the infinities are refused: no value compares sensibly
    with NaN, and no database stores either in a JSON column (SQLite's JSON_VALID check and
    PostgreSQL's jsonb refuse them), so a rule holding one could not be saved anyway."""
    if isinstance(value, bool):
        return False
    # An int is finite however large; math.isfinite would overflow converting a huge one.
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _is_whole(value: object) -> bool:
    """A finite number without a fraction (3 or 3.0), checked without float() of a huge int."""
    return _is_number(value) and (isinstance(value, int) or value.is_integer())  # type: ignore[union-attr]


def _is_non_finite(value: object) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _only_keys(node: dict, allowed: set[str], path: str) -> None:
    unexpected = sorted(set(node) - allowed)
    if unexpected:
        raise RuleError(f"{path}.{unexpected[0]}", f"unexpected key; allowed here: {', '.join(sorted(allowed))}")


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a seen value (tuples become lists, floats are rounded)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float):
        return round(value, 3)
    return value
