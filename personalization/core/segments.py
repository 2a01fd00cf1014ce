"""Which segments a visitor is in: every enabled segment's compiled rule over (profile, context)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .rules import Combination, CompiledRule, Condition, Leaf
from .types import Context, Profile, Window


@dataclass(frozen=True, slots=True)
class SegmentDefinition:
    slug: str
    rule: CompiledRule
    priority: int = 0


@dataclass(frozen=True, slots=True)
class SegmentSet:
    """The enabled segments, and every windowed count their rules read (fetched with the profile)."""

    definitions: tuple[SegmentDefinition, ...] = ()

    @property
    def windows(self) -> frozenset[Window]:
        return frozenset().union(*(d.rule.windows for d in self.definitions))

    @property
    def fields(self) -> frozenset[str]:
        """Every field name the rules read (the request builds the costly facts only if read)."""
        return frozenset().union(*(d.rule.fields for d in self.definitions))


def matching_segments(
    segments: Iterable[SegmentDefinition], profile: Profile, context: Context, now: float
) -> frozenset[str]:
    """The slugs of the segments whose rule holds for this visitor now. The enabled set (a tuple,
    the same object until a segment changes) runs as one compiled function (`compile_segments`)."""
    if isinstance(segments, tuple):
        return _matcher(segments)(profile, context, now)
    return frozenset(s.slug for s in segments if s.rule.matches(profile, context, now))


Matcher = Callable[[Profile, Context, float], frozenset[str]]
_MATCHERS: dict[int, tuple[tuple[SegmentDefinition, ...], Matcher]] = {}
_KEPT = 8  # a process sees one enabled set at a time; a few more for tests and admin previews


def _matcher(definitions: tuple[SegmentDefinition, ...]) -> Matcher:
    found = _MATCHERS.get(id(definitions))
    if found is not None and found[0] is definitions:
        return found[1]
    matcher = compile_segments(definitions)
    _MATCHERS[id(definitions)] = (definitions, matcher)  # the tuple is kept: its id stays its own
    while len(_MATCHERS) > _KEPT:
        del _MATCHERS[next(iter(_MATCHERS))]
    return matcher


def compile_segments(definitions: Iterable[SegmentDefinition]) -> Matcher:
    """Every segment's rule as one Python function, with the same answers as
    `CompiledRule.matches`:

    - each distinct value the rules read (a windowed count, a field, a dwell average) is read
      once per visitor however many rules read it, at the top of the function, written inline
      where the leaf says how (`Leaf.access`: an attribute, a dict lookup, one method call);
    - each distinct test that two or more leaves make (`user.logged_in eq true` in fifteen
      rules) is made once per visitor, after the reads, and its rules use the answer;
    - each rule is a plain `and`/`or`/`not` expression over those answers and its other leaves'
      comparisons (short circuits kept), with no per-node method calls.

    A shared test is made even for a visitor whose rules would not have reached it; that is only
    safe because a test has no effects. Should one raise (a value of an unexpected type), the
    visitor is answered by the rule trees themselves, exactly as before.

    The generated source holds only names, indexes and operators: the values an editor typed
    are bound as objects (k0, k1, ...), never written into the code."""
    definitions = tuple(definitions)
    builder = _Builder()
    for d in definitions:
        builder.count(d.rule.root)
    builder.plan()
    alike: dict[str, list[str]] = {}  # rules written alike (a segment copied, or one test) are asked once
    for d in definitions:
        alike.setdefault(builder.expression(d.rule.root), []).append(d.slug)
    lines = []
    for expression, slugs in alike.items():
        if len(slugs) == 1:
            lines.append(f"    if {expression}: out.append({builder.bind('s', slugs[0])})")
        else:
            lines.append(f"    if {expression}: out += {builder.bind('s', tuple(slugs))}")
    shared = ["    try:", *(f"    {line}" for line in builder.shared), "    except Exception:", "        return walk(p, c, now)"]
    source = "\n".join([
        "def match(p, c, now):", "    counts = p.windows.get", *builder.reads, *(shared if builder.shared else ()),
        "    out = []", *lines, "    return frozenset(out)", "",
    ])
    namespace: dict[str, Any] = {"frozenset": frozenset, **builder.names}
    namespace["walk"] = lambda p, c, now: frozenset(d.slug for d in definitions if d.rule.matches(p, c, now))
    exec(compile(source, "<tailored segments>", "exec"), namespace)  # noqa: S102 - names and operators only
    return namespace["match"]


# Comparisons written inline (the rest call the leaf's compiled test): exactly rules._comparison.
_INLINE = {
    "eq": "{x} == {k}",
    "ne": "{x} != {k}",
    "gt": "({x} is not None and {x} > {k})",
    "gte": "({x} is not None and {x} >= {k})",
    "lt": "({x} is not None and {x} < {k})",
    "lte": "({x} is not None and {x} <= {k})",
    "in": "{x} in {k}",
    "not_in": "{x} not in {k}",
    "contains": "({x} is not None and {k} in {x})",
    "contains_any": "({x} is not None and not {k}.isdisjoint({x}))",
    "present": "(({x} is not None and {x} != '' and {x} != ()) is {k})",
}


def _key(value: Any) -> Any:
    """A value as part of a dictionary key that tells 1, 1.0 and True apart (and lists from tuples)."""
    if isinstance(value, (tuple, list, frozenset, set)):
        return type(value), tuple(_key(v) for v in (sorted(value, key=repr) if isinstance(value, (frozenset, set)) else value))
    try:
        hash(value)
    except TypeError:
        return type(value), id(value)
    return type(value), value


class _Builder:
    """Numbers the distinct reads, the shared tests, the bound values and the called tests of a
    set of rules. `count` every rule first, then ask each one's `expression`."""

    def __init__(self) -> None:
        self.reads: list[str] = []  # the function's first lines: x0 = ..., x1 = ...
        self.shared: list[str] = []  # then the tests made by several leaves: b0 = ..., b1 = ...
        self.names: dict[str, Any] = {}
        self._read_index: dict[Any, str] = {}
        self._uses: dict[Any, int] = {}  # test -> how many leaves make it
        self._leaves: list[tuple[Any, Any]] = []  # (read, test) of every leaf counted
        self._lazy: set[Any] = set()  # the reads asked in one place only: read there, when reached
        self._shared_index: dict[Any, str] = {}

    def bind(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def count(self, node: Condition) -> None:
        if isinstance(node, Combination):
            for child in node.children:
                self.count(child)
        elif isinstance(node, Leaf):
            key = self._test_key(node)
            if key is not None:
                self._uses[key] = self._uses.get(key, 0) + 1
            self._leaves.append((self._read_key(node), key))

    def plan(self) -> None:
        """After counting: which reads are asked in one place (one leaf, or one shared test)."""
        places: dict[Any, set[Any]] = {}
        for n, (read, test) in enumerate(self._leaves):
            places.setdefault(read, set()).add(test if test is not None and self._uses[test] > 1 else n)
        self._lazy = {read for read, where in places.items() if len(where) == 1}

    def expression(self, node: Condition) -> str:
        if isinstance(node, Combination):
            if node.kind == "not":
                return f"(not {self.expression(node.children[0])})"
            joined = f" {'and' if node.kind == 'all' else 'or'} ".join(self.expression(c) for c in node.children)
            return f"({joined})"
        if not isinstance(node, Leaf):  # another node type: asked as it is (correct, not flattened)
            return f"{self.bind('n', node)}.holds(p, c, now)"
        key = self._test_key(node)
        if key is None or self._uses.get(key, 0) < 2:
            return self._test(node)
        if key not in self._shared_index:
            name = self._shared_index[key] = f"b{len(self._shared_index)}"
            self.shared.append(f"    {name} = {self._test(node)}")
        return self._shared_index[key]

    def _test(self, leaf: Leaf) -> str:
        x, first = self._read(leaf)  # first: what the test's first mention of the value says
        if leaf.compare is None:
            code = f"{self.bind('t', leaf.test)}(\0)"
        else:
            op, operand = leaf.compare
            if op in ("between", "around"):  # around: a range that crosses midnight
                low, high = self.bind("k", operand[0]), self.bind("k", operand[1])
                if op == "around":
                    code = f"(\0 is not None and ({x} >= {low} or {x} <= {high}))"
                else:
                    code = f"(\0 is not None and {low} <= {x} <= {high})"
            else:
                code = _INLINE[op].replace("{x}", "\0", 1).format(x=x, k=self.bind("k", operand))
        return code.replace("\0", first)

    def _test_key(self, leaf: Leaf) -> Any:
        """What makes two leaves' tests the same: the same read and the same comparison (a called
        test, a regular expression, is shared only with its own leaf)."""
        if leaf.compare is None:
            return None
        return self._read_key(leaf), leaf.compare[0], _key(leaf.compare[1])

    @staticmethod
    def _read_key(leaf: Leaf) -> Any:
        if leaf.window is not None:
            return "window", leaf.window
        if leaf.access is not None:
            template, operands = leaf.access
            return "access", template, tuple(_key(o) for o in operands)
        # Else what a leaf reads is fixed by its source less "op" and "value" (those are the
        # test): two leaves alike but for those read the same value, once.
        return "source", json.dumps({k: v for k, v in leaf.source.items() if k not in ("op", "value")}, sort_keys=True, default=str)

    def _read(self, leaf: Leaf) -> tuple[str, str]:
        """The value's name, and how the test first mentions it: the name, for a value read at
        the top; `(x3 := read)` for one asked in this place only (not read if not reached)."""
        key = self._read_key(leaf)
        if key in self._read_index:
            x = self._read_index[key]
            return x, x
        x = self._read_index[key] = f"x{len(self._read_index)}"
        if leaf.window is not None:  # Profile.count_within, without the call
            read = f"counts({self.bind('w', leaf.window)}, 0)"
        elif leaf.access is not None:
            template, operands = leaf.access
            read = template.format(*(self.bind("a", o) for o in operands))
        else:
            read = f"{self.bind('r', leaf.read)}(p, c, now)"
        if key in self._lazy:
            return x, f"({x} := {read})"
        self.reads.append(f"    {x} = {read}")
        return x, x
