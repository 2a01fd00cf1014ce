"""Pure facts derived from request data: daypart and weekday from the visitor-local time."""

from __future__ import annotations

from datetime import datetime

from .types import WEEKDAYS


def daypart(hour: int) -> str:
    """Morning 05-11, afternoon 12-16, evening 17-21, night 22-04 (visitor-local hours)."""
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


def weekday(local_time: datetime) -> str:
    return WEEKDAYS[local_time.weekday()]
