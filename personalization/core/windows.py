"""Windowed counts from time buckets: hourly buckets for the last 48 hours (exact to the hour) and
daily buckets for the retention period (exact to the day). The Redis store runs the same
arithmetic in a Lua script; this is the reference, used by the memory store and the tests."""

from __future__ import annotations

from collections.abc import Mapping

HOURLY_HOURS = 48
MAX_WINDOW_HOURS = 90 * 24


def window_buckets(hours: int, now_hour: int) -> tuple[str, range]:
    """Which buckets cover the last `hours` hours (the current one included): ("h", hours) for
    windows of at most 48 hours, else ("d", days) rounded up to whole days."""
    if hours <= HOURLY_HOURS:
        return "h", range(now_hour - hours + 1, now_hour + 1)
    days = -(-hours // 24)
    today = now_hour // 24
    return "d", range(today - days + 1, today + 1)


def window_count(hourly: Mapping[int, int], daily: Mapping[int, int], hours: int, now_hour: int) -> int:
    kind, buckets = window_buckets(hours, now_hour)
    source = hourly if kind == "h" else daily
    return sum(source.get(b, 0) for b in buckets)
