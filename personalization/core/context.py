"""Pure facts derived from request data: daypart, weekday and minute of the day from the
visitor-local time, and the clock arithmetic rules and schedules share (windows of the day
that may cross midnight)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from .types import DAYPARTS, WEEKDAYS

MINUTES_PER_DAY = 24 * 60
# When each daypart starts (visitor-local "HH:MM"); a daypart lasts until the next one starts,
# and the last one runs past midnight into the first. A site may move them (settings DAYPARTS).
DEFAULT_DAYPART_STARTS: Mapping[str, str] = {"morning": "05:00", "afternoon": "12:00", "evening": "17:00", "night": "22:00"}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\Z")


def clock_minutes(text: object) -> int | None:
    """Minutes after midnight of an "HH:MM" time (00:00 to 23:59), or None if it is not one."""
    if not isinstance(text, str):
        return None
    match = _CLOCK.match(text)
    return int(match[1]) * 60 + int(match[2]) if match else None


def in_daily_window(minute: int, start: int, end: int) -> bool:
    """Whether `minute` of the day is in [start, end], both inclusive. A window whose start is
    after its end crosses midnight: 22:00-02:00 holds at 23:30 and at 01:30, not at 03:00."""
    if start <= end:
        return start <= minute <= end
    return minute >= start or minute <= end


def daypart_starts(starts: Mapping[str, str] | None = None) -> tuple[tuple[int, str], ...]:
    """Validated daypart start times as (minute, daypart), sorted by minute. Raises ValueError
    naming the problem: every daypart once, each at a distinct "HH:MM"."""
    starts = DEFAULT_DAYPART_STARTS if starts is None else starts
    if set(starts) != set(DAYPARTS):
        raise ValueError(f"DAYPARTS must give a start time for each of {', '.join(DAYPARTS)}")
    parsed = []
    for name, text in starts.items():
        minute = clock_minutes(text)
        if minute is None:
            raise ValueError(f"DAYPARTS[{name!r}] must be a time such as '05:30', got {text!r}")
        parsed.append((minute, name))
    if len({minute for minute, _ in parsed}) != len(parsed):
        raise ValueError("DAYPARTS must start at distinct times")
    return tuple(sorted(parsed))


_DEFAULT_STARTS = daypart_starts()


def daypart_at(minute: int, starts: tuple[tuple[int, str], ...] = _DEFAULT_STARTS) -> str:
    """The daypart a minute of the day falls in: the last one started at or before it (the
    latest one of the day when none has started yet, e.g. night at 03:00)."""
    current = starts[-1][1]
    for start, name in starts:
        if start > minute:
            break
        current = name
    return current


def daypart(hour: int) -> str:
    """Morning 05-11, afternoon 12-16, evening 17-21, night 22-04 (the default start times)."""
    return daypart_at(hour * 60)


def weekday(local_time: datetime) -> str:
    return WEEKDAYS[local_time.weekday()]


def minute_of_day(local_time: datetime) -> int:
    return local_time.hour * 60 + local_time.minute
