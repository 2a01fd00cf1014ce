"""The one safe JSON parser of every endpoint that takes a JSON body.

`json.loads` alone turns hostile input into 500s: deep nesting raises RecursionError, a
5,000-digit integer ValueError (Python's int-string limit), `1e400` becomes infinity (OverflowError
later, wherever an int is wanted), and duplicate keys silently keep the last value. `parse_json`
refuses all of these up front with a JsonBodyError carrying a stable `error` code and a precise
message, so each endpoint answers 400 and nothing reaches storage.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32  # the deepest legitimate body (a GraphQL input variable) is far shallower
MAX_INT_DIGITS = 20  # every id and count fits in 64 bits (19 digits) with a sign

# Strings (with their escapes) removed before counting brackets: a "[" inside a string nests nothing.
# (The unrolled form, "[^"\\]*(?:\\.[^"\\]*)*", matches the same strings as "(?:[^"\\]|\\.)*" at a
# fraction of the cost: one step per run of plain characters, not one per character.)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JsonBodyError(ValueError):
    """A body refused whole; `as_json()` is the 400 body."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def as_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def parse_json(body: bytes | str, max_depth: int = MAX_DEPTH, max_int_digits: int = MAX_INT_DIGITS) -> Any:
    """Decode a request body; raises JsonBodyError (never anything else) when it is not safe JSON."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise JsonBodyError("malformed_json", f"the body is not UTF-8: {exc}") from None
    raw = body if isinstance(body, bytes) else text.encode("utf-8", "surrogatepass")
    # Brackets are counted exactly (strings removed, a regular expression pass) only when there
    # are more of them than the limit: a bound is enough for an event batch, and the exact count
    # was a third of the parse.
    if raw.count(b"[") + raw.count(b"{") > max_depth:
        depth = _depth(_STRING.sub("", text))
        if depth > max_depth:
            raise JsonBodyError("json_too_deep", f"the JSON nests {depth} levels deep; the limit is {max_depth}")
    # Integers are checked one by one only if some run of digits (anywhere, strings included: a
    # superset) is long enough to break the limit: a Python call per integer was a tenth of an
    # event batch's cost. Digits become "0" and the rest " ", so the run is one substring test.
    long_digits = b"0" * (max_int_digits + 1) in raw.translate(_DIGITS_AS_ZERO)
    try:
        return json.loads(
            text,
            parse_int=(lambda digits: _int(digits, max_int_digits)) if long_digits else None,
            parse_float=_float,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except JsonBodyError:
        raise
    except (json.JSONDecodeError, RecursionError, ValueError, OverflowError) as exc:
        raise JsonBodyError("malformed_json", f"the body is not valid JSON: {exc}") from None


_DIGITS_AS_ZERO = bytes(ord("0") if chr(byte) in "0123456789" else ord(" ") for byte in range(256))


def _depth(outside_strings: str) -> int:
    """How deep arrays and objects nest (in a text with its strings removed), counted without
    recursion (so no RecursionError)."""
    deepest = level = 0
    for bracket in _BRACKETS.findall(outside_strings):
        level += 1 if bracket in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def _int(digits: str, max_digits: int) -> int:
    if len(digits.lstrip("-")) > max_digits:
        raise JsonBodyError("number_out_of_range", f"an integer has {len(digits.lstrip('-'))} digits; the limit is {max_digits}")
    return int(digits)


def loads_finite(text: str) -> Any:
    """`json.loads` with JSON's own numbers only: NaN, Infinity and numbers too large for a float
    (1e400), which Python's json module accepts, raise JsonBodyError (a ValueError) instead: no
    database's JSON column stores them. Other mistakes raise json's own error and message."""
    return json.loads(text, parse_float=_float, parse_constant=_constant)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonBodyError("number_out_of_range", f"the number {text[:40]} is too large to represent")
    return value


def _constant(name: str) -> float:
    raise JsonBodyError("number_out_of_range", f"{name} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key: which one wins differs between parsers, so neither is guessed.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise JsonBodyError("duplicate_key", f"the key {duplicate[:64]!r} appears more than once in one object")
    return result
