"""Server-rendered SVG charts for the results page: readable without JavaScript, each with a
<title> and text labels, so a screen reader and a print-out see the same figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from tailored.core import stats

PALETTE = ("#4b5563", "#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed")


def _n(value: float) -> str:
    return f"{value:.1f}"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def rate_chart(arms: Sequence, width: int = 640, row: int = 34) -> SafeString:
    """Conversion rate per arm: a dot at the rate, a bar across its 95% interval."""
    # Room on the left for the longest label (about 7 px a character at 12 px), on the right
    # for the top tick and the last rate label.
    label_w, pad = min(max(160, 16 + 7 * max((len(arm.label) for arm in arms), default=0)), 320), 56
    height = row * len(arms) + 40
    top = max([arm.interval[1] for arm in arms] + [0.01]) * 1.1
    x = lambda v: label_w + (width - label_w - pad) * v / top  # noqa: E731
    parts = [_axis(x, top, height - 24, label_w, width - pad)]
    for i, arm in enumerate(arms):
        y = 20 + i * row
        colour = PALETTE[i % len(PALETTE)]
        low, high = arm.interval
        parts.append(format_html(
            '<text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>'
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="6" stroke-opacity="0.35"/>'
            '<circle cx="{}" cy="{}" r="5" fill="{}"><title>{}: {} ({}–{})</title></circle>'
            '<text x="{}" y="{}" font-size="11" fill="{}">{}</text>',
            label_w - 8, y + 4, arm.label, _n(x(low)), _n(x(high)), y, y, colour,
            _n(x(arm.rate)), y, colour, arm.label, _pct(arm.rate), _pct(low), _pct(high),
            _n(x(high) + 6), y + 4, colour, _pct(arm.rate),
        ))
    return _svg(width, height, "Conversion rate per arm with 95% intervals", parts)


def timeline_chart(series: Mapping[str, Sequence[tuple[datetime, int, int]]], labels: Mapping[str, str],
                   width: int = 640, height: int = 220) -> SafeString:
    """Cumulative conversion rate per arm, hour by hour, with its 95% interval as a band. Arms
    are drawn in the order of `labels` (the table's order), so colours match the rate chart."""
    hours = sorted({hour for points in series.values() for hour, _, _ in points})
    if not hours:
        return mark_safe("")
    left, right, top_pad, bottom = 48, 12, 12, height - 40
    rates = [c / e for points in series.values() for _, e, c in points if e]
    top = max(max(rates, default=0.0) * 1.5, 0.01)  # early, wide intervals are clipped, not the lines
    span = max(len(hours) - 1, 1)
    x = lambda hour: left + (width - left - right) * hours.index(hour) / span  # noqa: E731
    y = lambda rate: bottom - (bottom - top_pad) * min(rate, top) / top  # noqa: E731
    parts = [format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#9ca3af"/>'
        '<text x="4" y="{}" font-size="11">{}</text><text x="4" y="{}" font-size="11">0%</text>'
        '<text x="{}" y="{}" font-size="11">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>',
        left, width - right, _n(bottom), _n(bottom), _n(y(top) + 10), _pct(top), bottom,
        left, bottom + 16, hours[0].strftime("%d %b %H:00"), width - right, bottom + 16, hours[-1].strftime("%d %b %H:00"),
    )]
    arms = [arm for arm in labels if arm in series] + [arm for arm in series if arm not in labels]
    for i, arm in enumerate(arms):
        points, colour, label = series[arm], PALETTE[i % len(PALETTE)], labels.get(arm, arm)
        bounds = [stats.wilson_interval(stats.Counts(min(c, e), e)) for _, e, c in points]
        upper = [f"{x(hour):.1f},{y(high):.1f}" for (hour, _, _), (_, high) in zip(points, bounds, strict=True)]
        lower = [f"{x(hour):.1f},{y(low):.1f}" for (hour, _, _), (low, _) in zip(points, bounds, strict=True)]
        coords = " ".join(f"{x(hour):.1f},{y(c / e if e else 0):.1f}" for hour, e, c in points)
        _, e, c = points[-1]
        parts.append(format_html(
            '<polygon points="{}" fill="{}" fill-opacity="0.12" stroke="none"/>'
            '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"><title>{}: {} after {} visitors</title></polyline>'
            '<text x="{}" y="{}" font-size="11" fill="{}">■ {} {}</text>',
            " ".join(upper + lower[::-1]), colour, coords, colour, label, _pct(c / e if e else 0), e,
            left + 140 * i, height - 6, colour, label, _pct(c / e if e else 0),
        ))
    return _svg(width, height, "Cumulative conversion rate per arm over time, with 95% intervals", parts)


def _axis(x, top: float, y: int, left: int, right: int) -> SafeString:
    ticks = [top * i / 4 for i in range(5)]
    return format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#9ca3af"/>{}', left, right, y, y,
        format_html_join("", '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
                         ((_n(x(t)), y + 14, _pct(t)) for t in ticks)),
    )


def _svg(width: int, height: int, title: str, parts: Sequence[SafeString]) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="{}" class="tl-chart"><title>{}</title>{}</svg>',
        width, height, width, height, title, title, mark_safe("".join(parts)),  # noqa: S308 - built with format_html
    )


def allocation_chart(changes: Sequence, labels: Mapping[str, str], until: datetime | None = None,
                     width: int = 640, height: int = 200) -> SafeString:
    """A bandit's share of new visitors per arm over time: a step line per arm (each share holds
    until the next reallocation; the last until `until`), in the table's order so colours match
    the other charts. The legend gives each arm's current share."""
    if not changes:
        return mark_safe("")
    left, right, top_pad, bottom = 48, 12, 12, height - 40
    start = changes[0].at
    end = max(until or changes[-1].at, changes[-1].at)
    span = max((end - start).total_seconds(), 1.0)
    x = lambda at: left + (width - left - right) * (at - start).total_seconds() / span  # noqa: E731
    y = lambda share: bottom - (bottom - top_pad) * share  # noqa: E731
    parts = [format_html(
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#9ca3af"/>'
        '<text x="4" y="{}" font-size="11">100%</text><text x="4" y="{}" font-size="11">0%</text>'
        '<text x="{}" y="{}" font-size="11">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>',
        left, width - right, bottom, bottom, _n(y(1.0) + 10), bottom,
        left, bottom + 16, start.strftime("%d %b %H:%M"), width - right, bottom + 16, end.strftime("%d %b %H:%M"),
    )]
    arms = [arm for arm in labels if any(arm in c.weights for c in changes)]
    for i, arm in enumerate(arms):
        colour, label = PALETTE[i % len(PALETTE)], labels.get(arm, arm)
        shares = [float(change.weights.get(arm, 0.0)) for change in changes]
        points = [f"{x(change.at):.1f},{y(share):.1f}" for change, share in zip(changes, shares, strict=True)]
        # Each share holds until the next change: a step at every change after the first.
        steps = [points[0]] + [f"{x(change.at):.1f},{y(previous):.1f} {point}"
                               for change, previous, point in zip(changes[1:], shares[:-1], points[1:], strict=True)]
        steps.append(f"{x(end):.1f},{y(shares[-1]):.1f}")
        parts.append(format_html(
            '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"><title>{}: {} of new visitors now</title></polyline>'
            '<text x="{}" y="{}" font-size="11" fill="{}">■ {} {}</text>',
            " ".join(steps), colour, label, _pct(shares[-1]), left + 140 * i, height - 6, colour, label, _pct(shares[-1]),
        ))
    return _svg(width, height, "Share of new visitors per arm after each reallocation", parts)
