"""Argument types the management commands share: argparse turns a refusal into a one-line error
naming the option (a CommandError through call_command), never a traceback later."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

# The most days a window or an age may span: ten years. Far beyond any retention period, and far
# short of what datetime and timedelta can hold (a larger --since once ended in "year is out of range").
MAX_DAYS = 3650


def whole(minimum: int, what: str = "", maximum: int | None = None) -> Callable[[str], int]:
    """A whole number, `minimum` or more, and `maximum` or less when given (`what` names its unit
    in the refusal)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # also more digits than Python converts (4,300)
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"{minimum} or more" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"must be a whole number{' of ' + what if what else ''}, {bounds} (got {text[:40]!r})")
        return value

    return parse


def positive_days(text: str) -> float:
    """A number of days above 0 and at most MAX_DAYS (fractions allowed)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and 0 < value <= MAX_DAYS):
        raise argparse.ArgumentTypeError(f"must be a number of days above 0, {MAX_DAYS} at most (got {text[:40]!r})")
    return value


def seconds(maximum: float) -> Callable[[str], float]:
    """A number of seconds from 0 to `maximum` (fractions allowed; never NaN or infinity)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value <= maximum):
            raise argparse.ArgumentTypeError(f"must be a number of seconds from 0 to {maximum:g} (got {text[:40]!r})")
        return value

    return parse
