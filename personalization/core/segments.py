"""Which segments a visitor is in: every enabled segment's compiled rule over (profile, context)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from .rules import SEQUENCE_ACCESS, Combination, CompiledRule, Condition, Leaf
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
        "def match(p, c, now):", *builder.reads, *(shared if builder.shared else ()),
        "    out = []", *lines, "    return frozenset(out)", "",
    ])
    namespace: dict[str, Any] = {"frozenset": frozenset, "tuple": tuple, **builder.names}
    if builder.windows:
        namespace.update(_window_order(builder.windows))
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


# The comparisons of _INLINE that hold for no None (x is not None and ...), without that check.
_UNGUARDED = {
    "gt": "{x} > {k}",
    "gte": "{x} >= {k}",
    "lt": "{x} < {k}",
    "lte": "{x} <= {k}",
    "contains": "{k} in {x}",
    "contains_any": "not {k}.isdisjoint({x})",
    "between": "",
    "around": "",
}


def _window_order(windows: tuple[Window, ...]) -> dict[str, Any]:
    """What the compiled function needs to read its windowed counts by position: the profile
    store returns the same windows in the same order for every request (one segment set, one
    plan), so once a profile's keys are known, a profile whose keys are those same objects in
    the same order (one tuple comparison, by identity) gives its counts as one tuple, with no
    per-window lookup (a Window's hash is a Python call). Any other profile is read window by
    window, as before, and teaches the order if it holds every window."""
    state: list[tuple[tuple[Any, ...], Callable[[tuple[Any, ...]], Any] | None]] = [((), None)]

    def learn(counts: Mapping[Window, int]) -> None:
        keys = tuple(counts)
        try:
            positions = [keys.index(window) for window in windows]
        except ValueError:  # a window missing: this profile was read for other rules
            return
        state[0] = (keys, itemgetter(*positions))  # one assignment: a concurrent reader sees old or new

    return {"order": state, "learn": learn}


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
        self._first: dict[Any, Leaf] = {}  # read -> the first leaf that reads it
        self._first_test: dict[Any, Leaf] = {}  # test -> the first leaf that makes it
        self.windows: tuple[Window, ...] = ()  # every window read, in the order of the reads' names
        self._counts: set[str] = set()  # the reads that are counts (windows, sequences): never None

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
                self._first_test.setdefault(key, node)
            read = self._read_key(node)
            self._leaves.append((read, key))
            self._first.setdefault(read, node)

    def plan(self) -> None:
        """After counting: which reads are asked in one place (one leaf, or one shared test)."""
        places: dict[Any, set[Any]] = {}
        for n, (read, test) in enumerate(self._leaves):
            places.setdefault(read, set()).add(test if test is not None and self._uses[test] > 1 else n)
        self._lazy = {read for read, where in places.items() if len(where) == 1}
        windows = [read for read in places if read[0] == "window"]
        if windows:
            self._read_windows(windows)
        sequences = [read for read in places if read[:2] == ("access", SEQUENCE_ACCESS)]
        if len(sequences) > 1:
            self._read_sequences(sequences)
        self._share()

    def _share(self) -> None:
        """The tests two or more leaves make, each made once: grouped by the value they test, so
        that the thresholds on one value (lifetime value over 100, over 500, over 1000) ask
        whether it is there (not None) once."""
        by_read: dict[Any, list[Any]] = {}
        for test, uses in self._uses.items():
            if uses > 1:
                by_read.setdefault(test[0], []).append(test)
        for read, tests in by_read.items():
            guarded = [test for test in tests if test[1] in _UNGUARDED]
            if len(guarded) > 1 and self._read_index.get(read) not in self._counts:
                x, _ = self._read(self._first_test[guarded[0]])  # read in two places or more: at the top
                names = [self._shared_name(test) for test in guarded]
                self.shared += ["    if " + x + " is not None:"]
                self.shared += [f"        {name} = {self._test(self._first_test[test], bare=True)}" for name, test in zip(names, guarded, strict=True)]
                self.shared += ["    else:", f"        {' = '.join(names)} = False"]
            else:
                guarded = []
            for test in tests:
                if test not in guarded:
                    self.shared.append(f"    {self._shared_name(test)} = {self._test(self._first_test[test])}")

    def _shared_name(self, test: Any) -> str:
        name = self._shared_index[test] = f"b{len(self._shared_index)}"
        return name

    def _read_sequences(self, reads: list[Any]) -> None:
        """Product views in several windows (Profile.items_viewed_within of each), counted in one
        pass over the items: widest window first, a narrower one only for the items in it."""
        reads = sorted(reads, key=lambda read: -self._first[read].access[1][0])  # type: ignore[index]
        names = [self._name(read) for read in reads]
        self._counts.update(names)
        self.reads.append(f"    {' = '.join(names)} = 0")
        self.reads += [f"    y{i} = now - {self.bind('a', self._first[read].access[1][0])}" for i, read in enumerate(reads)]  # type: ignore[index]
        self.reads.append("    for _, ts in p.recent_items:")
        for i, x in enumerate(names):
            self.reads += [f"    {'    ' * (i + 1)}if ts > y{i}:", f"    {'    ' * (i + 2)}{x} += 1"]

    def _name(self, read: Any) -> str:
        self._lazy.discard(read)
        x = self._read_index[read] = f"x{len(self._read_index)}"
        return x

    def _read_windows(self, reads: list[Any]) -> None:
        """Every windowed count at the top: by position when the profile's windows are in the
        order learnt (see _window_order), else window by window (Profile.count_within's lookup)."""
        names = [self._name(read) for read in reads]
        self._counts.update(names)
        bound = [self.bind("w", self._first[read].window) for read in reads]
        self.windows = tuple(self._first[read].window for read in reads)  # type: ignore[misc]
        picked = f"{', '.join(names)}," if len(names) > 1 else names[0]  # itemgetter of one gives the value
        self.reads += [
            "    counts = p.windows",
            "    if not counts:",
            f"        {' = '.join(names)} = 0",
            "    else:",
            "        known = order[0]",
            "        if tuple(counts) == known[0]:",
            f"            {picked} = known[1](tuple(counts.values()))",
            "        else:",
            *(f"            {x} = counts.get({w}, 0)" for x, w in zip(names, bound, strict=True)),
            "            learn(counts)",
        ]

    def expression(self, node: Condition) -> str:
        if isinstance(node, Combination):
            if node.kind == "not":
                return f"(not {self.expression(node.children[0])})"
            # A part written twice is asked once (parts have no effects; the first is asked first).
            parts = dict.fromkeys(self.expression(c) for c in node.children)
            joined = f" {'and' if node.kind == 'all' else 'or'} ".join(parts)
            return f"({joined})"
        if not isinstance(node, Leaf):  # another node type: asked as it is (correct, not flattened)
            return f"{self.bind('n', node)}.holds(p, c, now)"
        key = self._test_key(node)
        if key in self._shared_index:  # made once, after the reads (see _share)
            return self._shared_index[key]
        return self._test(node)

    def _test(self, leaf: Leaf, bare: bool = False) -> str:
        """The leaf's test as an expression; `bare`: without the None check (made before, or
        not needed: a count is a number)."""
        x, first = self._read(leaf)  # first: what the test's first mention of the value says
        bare = bare or x in self._counts
        if leaf.compare is None:
            code = f"{self.bind('t', leaf.test)}(\0)"
        else:
            op, operand = leaf.compare
            if op in ("between", "around"):  # around: a range that crosses midnight
                low, high = self.bind("k", operand[0]), self.bind("k", operand[1])
                code = f"(\0 >= {low} or {x} <= {high})" if op == "around" else f"{low} <= \0 <= {high}"
                if not bare:
                    code = f"(\0 is not None and {code.replace(chr(0), x)})"
            else:
                code = (_UNGUARDED if bare and op in _UNGUARDED else _INLINE)[op].replace("{x}", "\0", 1).format(x=x, k=self.bind("k", operand))
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
        if leaf.access is not None:  # (a window's count was named in `plan`)
            template, operands = leaf.access
            read = template.format(*(self.bind("a", o) for o in operands))
        else:
            read = f"{self.bind('r', leaf.read)}(p, c, now)"
        if key in self._lazy:
            return x, f"({x} := {read})"
        self.reads.append(f"    {x} = {read}")
        return x, x
