"""The geometry of the segment admin's size charts, for inline SVG drawn by templates: the edit
view's daily sizes with labelled axes (dates across, visitors up) and the list's 7-day
sparklines. Pure arithmetic over (day, count) pairs; the templates only place what this returns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.utils import dateformat

WIDTH, HEIGHT = 640, 210
LEFT, RIGHT, TOP, BOTTOM = 56, 632, 12, 162  # the plot area inside the SVG
BAR_SHARE = 0.8  # of each day's slot
X_LABEL_EVERY = 7  # days between date labels, counted back from the last day


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    count: int


@dataclass(frozen=True, slots=True)
class Tick:
    at: float  # x for a date, y for a count
    label: str


@dataclass(frozen=True, slots=True)
class SizeChart:
    bars: tuple[Bar, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    peak: int
    first: date | None
    last: date | None
    now: Bar | None = None  # the live count, drawn apart after the last day
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM


def nice_step(rough: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least `rough` (and at least 1)."""
    if rough <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(rough))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)


def size_chart(sizes: Sequence[tuple[date, int]], now: int | None = None) -> SizeChart:
    """Bars for the daily sizes and, one slot apart after them, the live count `now`; a visitors
    scale from 0 in round steps (at most five); a date under the last day and every
    X_LABEL_EVERY days before it."""
    peak = max((count for _, count in sizes), default=0)
    step = nice_step(max(peak, now or 0) / 4)
    scale = max(step * math.ceil(max(peak, now or 0) / step), step)
    slot = (RIGHT - LEFT) / max(len(sizes) + (2 if now is not None else 0), 1)

    def bar(i: int, day: date, count: int) -> Bar:
        height = round(count / scale * (BOTTOM - TOP), 1)
        x = round(LEFT + i * slot + slot * (1 - BAR_SHARE) / 2, 1)
        return Bar(x, round(BOTTOM - height, 1), round(slot * BAR_SHARE, 1), height, day, count)

    bars = tuple(bar(i, day, count) for i, (day, count) in enumerate(sizes))
    now_bar = bar(len(sizes) + 1, sizes[-1][0], now) if now is not None and sizes else None
    y_ticks = tuple(Tick(round(BOTTOM - value / scale * (BOTTOM - TOP), 1), f"{value:,}") for value in range(0, scale + 1, step))
    x_ticks = tuple(
        Tick(round(LEFT + (i + 0.5) * slot, 1), dateformat.format(sizes[i][0], "j M"))
        for i in sorted(range(len(sizes) - 1, -1, -X_LABEL_EVERY))
    )
    if now_bar is not None:
        x_ticks += (Tick(round(now_bar.x + now_bar.width / 2, 1), "now"),)
    return SizeChart(
        bars=bars, x_ticks=x_ticks, y_ticks=y_ticks, peak=peak, now=now_bar,
        first=sizes[0][0] if sizes else None, last=sizes[-1][0] if sizes else None,
    )


@dataclass(frozen=True, slots=True)
class Sparkline:
    bars: tuple[Bar, ...]
    width: int
    height: int


def sparkline(sizes: Sequence[tuple[date, int]], width: int = 70, height: int = 22) -> Sparkline:
    """Small bars for a list cell, scaled to the busiest day; a day with nobody is a 1 px stub,
    so seven empty days still read as seven days."""
    peak = max((count for _, count in sizes), default=0)
    slot = width / max(len(sizes), 1)
    bars = []
    for i, (day, count) in enumerate(sizes):
        bar = max(round(count / peak * (height - 1), 1), 1) if peak else 1
        bars.append(Bar(round(i * slot, 1), round(height - bar, 1), round(slot * BAR_SHARE, 1), bar, day, count))
    return Sparkline(tuple(bars), width, height)
