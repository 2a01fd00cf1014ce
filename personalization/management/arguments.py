"""Argument types the management commands share: argparse turns a refusal into a one-line error
naming the option (a CommandError through call_command), never a traceback later."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole(minimum: int, what: str = "") -> Callable[[str], int]:
    """A whole number, `minimum` or more (`what` names its unit in the refusal)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number{' of ' + what if what else ''}, {minimum} or more (got {text!r})")
        return value

    return parse


def positive_days(text: str) -> float:
    """A number of days above 0 (fractions allowed)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of days above 0 (got {text!r})")
    return value
