"""The geometry of the Insights report's line charts, for inline SVG drawn by templates (as
tailored.segment_chart does for segment sizes): one polyline per variant over days, a rate scale
from 0 in round steps, dates under the axis. Pure arithmetic; the template only places it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from django.utils import dateformat

from tailored.segment_chart import Tick

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 48, 528, 10, 146  # room on the right for the last date
COLOURS = ("#2e6fb7", "#c2410c", "#15803d", "#7e22ce", "#a16207", "#0f766e")
MAX_DOTS = 31
RATE_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5)


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    colour: str
    points: str  # "x,y x,y ..." for <polyline points>
    dots: tuple[tuple[float, float, str], ...]  # (x, y, title) per day with a value


@dataclass(frozen=True, slots=True)
class LineChart:
    lines: tuple[Line, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM


def rate_step(peak: float) -> float:
    """The smallest round step that covers `peak` in at most four steps."""
    return next((step for step in RATE_STEPS if step * 4 >= peak), 0.5)


def rate_chart(days: Sequence[date], series: Mapping[str, Sequence[float | None]]) -> LineChart:
    """One line per label over `days` (None: no impressions that day, left as a gap in the dots
    and skipped by the line); a percentage scale from 0."""
    peak = max((v for values in series.values() for v in values if v is not None), default=0.0)
    step = rate_step(peak)
    scale = step * max(1, -(-peak // step)) if peak else step
    slot = (RIGHT - LEFT) / max(len(days) - 1, 1)

    def y(value: float) -> float:
        return round(BOTTOM - value / scale * (BOTTOM - TOP), 1)

    lines = []
    for index, (label, values) in enumerate(series.items()):
        known = [(round(LEFT + i * slot, 1), y(v), f"{label}, {days[i]:%d %b}: {v:.2%}") for i, v in enumerate(values) if v is not None]
        points = " ".join(f"{x},{yy}" for x, yy, _ in known)
        # A dot (with its value on hover) per day up to a month; longer ranges draw the line only,
        # as 90 dots per line are unreadable and cost the page most of its weight.
        lines.append(Line(label, COLOURS[index % len(COLOURS)], points, tuple(known) if len(days) <= MAX_DOTS else ()))
    count = round(scale / step)
    y_ticks = tuple(Tick(y(i * step), f"{i * step:.1%}" if step < 0.01 else f"{i * step:.0%}") for i in range(count + 1))
    every = max(1, len(days) // 6)
    x_ticks = tuple(Tick(round(LEFT + i * slot, 1), dateformat.format(days[i], "j M")) for i in range(len(days) - 1, -1, -every))
    return LineChart(tuple(lines), tuple(reversed(x_ticks)), y_ticks)
