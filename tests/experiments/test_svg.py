"""The charts are plain SVG: labels escaped, one mark per arm, the interval band present."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tailored.experiments.results import ArmResult
from tailored.experiments.svg import rate_chart, timeline_chart

HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)


def arm(key: str, label: str, rate: float) -> ArmResult:
    return ArmResult(key, label, 50, 100, int(rate * 100), rate, (rate - 0.05, rate + 0.05))


def test_the_rate_chart_draws_each_arm_and_escapes_labels():
    svg = rate_chart([arm("control", "Plain", 0.10), arm("b", "<script>alert(1)</script>", 0.14)])
    assert svg.startswith("<svg") and svg.count("<circle") == 2
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "14.0%" in svg and "9.0%–19.0%" in svg


def test_the_timeline_draws_a_line_and_a_band_per_arm():
    series = {
        "b": [(HOUR, 50, 5), (HOUR + timedelta(hours=1), 100, 12)],
        "control": [(HOUR, 50, 4), (HOUR + timedelta(hours=1), 100, 9)],
    }
    svg = timeline_chart(series, {"control": "Plain", "b": "Bold"})
    assert svg.count("<polyline") == 2 and svg.count("<polygon") == 2
    assert svg.index("Plain 9.0%") < svg.index("Bold 12.0%")  # the table's order, whatever the series order
    assert timeline_chart({}, {}) == ""
