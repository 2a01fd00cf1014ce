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
    """Every segment's rule as one Python function: each distinct value the rules read (a
    windowed count, a field, a dwell average) is read once per visitor however many rules read
    it, and each rule is a plain `and`/`or`/`not` expression over its leaves' comparisons
    (short circuits kept), with no per-node method calls. Same answers as `CompiledRule.matches`.

    The generated source holds only names, indexes and operators: the values an editor typed
    are bound as objects (k0, k1, ...), never written into the code."""
    definitions = tuple(definitions)
    builder = _Builder()
    lines = [f"    if {builder.expression(d.rule.root)}: out.append(s{i})" for i, d in enumerate(definitions)]
    source = "\n".join(
        ["def match(p, c, now):", "    out = []", "    counts = p.windows.get", *builder.reads, *lines, "    return frozenset(out)", ""]
    )
    namespace: dict[str, Any] = {"frozenset": frozenset, **builder.names}
    namespace.update((f"s{i}", d.slug) for i, d in enumerate(definitions))
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


class _Builder:
    """Numbers the distinct reads, the bound values and the called tests of a set of rules."""

    def __init__(self) -> None:
        self.reads: list[str] = []  # the function's first lines: x0 = ..., x1 = ...
        self.names: dict[str, Any] = {}
        self._read_index: dict[str, str] = {}

    def bind(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def expression(self, node: Condition) -> str:
        if isinstance(node, Combination):
            if node.kind == "not":
                return f"(not {self.expression(node.children[0])})"
            joined = f" {'and' if node.kind == 'all' else 'or'} ".join(self.expression(c) for c in node.children)
            return f"({joined})"
        if not isinstance(node, Leaf):  # another node type: asked as it is (correct, not flattened)
            return f"{self.bind('n', node)}.holds(p, c, now)"
        x = self._read(node)
        if node.compare is None:
            return f"{self.bind('t', node.test)}({x})"
        op, operand = node.compare
        if op in ("between", "around"):  # around: a range that crosses midnight
            low, high = self.bind("k", operand[0]), self.bind("k", operand[1])
            if op == "around":
                return f"({x} is not None and ({x} >= {low} or {x} <= {high}))"
            return f"({x} is not None and {low} <= {x} <= {high})"
        return _INLINE[op].format(x=x, k=self.bind("k", operand))

    def _read(self, leaf: Leaf) -> str:
        # What a leaf reads is fixed by its source less "op" and "value" (those are the test):
        # two leaves alike but for those read the same value, once.
        key = json.dumps({k: v for k, v in leaf.source.items() if k not in ("op", "value")}, sort_keys=True, default=str)
        if key not in self._read_index:
            x = self._read_index[key] = f"x{len(self._read_index)}"
            if leaf.window is not None:  # Profile.count_within, without the call
                self.reads.append(f"    {x} = counts({self.bind('w', leaf.window)}, 0)")
            else:
                self.reads.append(f"    {x} = {self.bind('r', leaf.read)}(p, c, now)")
        return self._read_index[key]
