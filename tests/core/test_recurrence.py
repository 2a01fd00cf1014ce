"""Weekly schedules on variants (issue 18 item 4): weekdays and a time window in the visitor's
zone or the site's, windows that cross midnight, and daylight-saving changes on both sides of
the date line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tailored.core.selection import Recurrence, VariantTags, choose_variant
from tailored.core.types import Context

WEEKDAYS_ONLY = frozenset({"mon", "tue", "wed", "thu", "fri"})
MORNING_RUSH = Recurrence(WEEKDAYS_ONLY, 8 * 60 + 30, 10 * 60)
FRIDAY_NIGHT = Recurrence(frozenset({"fri"}), 22 * 60, 2 * 60)


def at(day: str, hh: int, mm: int = 0) -> Context:
    return Context(weekday=day, local_minute=hh * 60 + mm)


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (at("mon", 8, 30), True), (at("fri", 9, 59), True), (at("mon", 10, 0), False), (at("mon", 8, 29), False),
        (at("sat", 9, 0), False), (Context(weekday="mon"), False), (Context(local_minute=540), False),
    ],
)
def test_every_weekday_0830_to_1000_in_the_visitors_time(context, expected):
    assert MORNING_RUSH.active(context, now=None) is expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [(at("fri", 22, 0), True), (at("fri", 23, 30), True), (at("sat", 1, 30), True), (at("sat", 2, 0), False),
     (at("fri", 1, 30), False), (at("sat", 22, 30), False), (at("thu", 23, 0), False)],
)
def test_a_window_crossing_midnight_belongs_to_the_day_it_starts(context, expected):
    assert FRIDAY_NIGHT.active(context, now=None) is expected


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


def test_site_zone_across_the_spring_forward_in_london():
    # 29 March 2026: 01:00 GMT becomes 02:00 BST. A Sunday 01:30-02:30 window opens at the jump.
    sunday = Recurrence(frozenset({"sun"}), 90, 150, "Europe/London")
    assert sunday.active(Context(), utc(2026, 3, 29, 0, 59)) is False  # 00:59 GMT
    assert sunday.active(Context(), utc(2026, 3, 29, 1, 0)) is True  # 02:00 BST
    assert sunday.active(Context(), utc(2026, 3, 29, 1, 30)) is False  # 02:30 BST
    assert sunday.active(Context(), None) is False  # no clock: never shown


def test_site_zone_across_the_autumn_change_in_auckland_beyond_the_date_line():
    # 5 April 2026, 03:00 NZDT becomes 02:00 NZST (UTC+13 to UTC+12): Sunday local while UTC is
    # still Saturday. The 02:00-03:00 window is entered twice, both times on Sunday.
    sunday = Recurrence(frozenset({"sun"}), 120, 180, "Pacific/Auckland")
    assert sunday.active(Context(), utc(2026, 4, 4, 13, 30)) is True  # 02:30 NZDT, Saturday in UTC
    assert sunday.active(Context(), utc(2026, 4, 4, 14, 30)) is True  # 02:30 NZST, the second time
    assert sunday.active(Context(), utc(2026, 4, 4, 15, 0)) is False  # 03:00 NZST
    assert sunday.active(Context(), utc(2026, 4, 4, 12, 30)) is False  # 01:30 NZDT
    saturday = Recurrence(frozenset({"sat"}), 0, 24 * 60 - 1, "Pacific/Auckland")
    assert saturday.active(Context(), utc(2026, 4, 4, 13, 30)) is False  # Saturday only in UTC


def test_a_variant_on_a_weekly_schedule_is_chosen_only_inside_it():
    variants = [VariantTags("rush", devices=frozenset({"mobile"}), recurrence=MORNING_RUSH), VariantTags("always")]
    assert choose_variant(variants, frozenset(), Context(device="mobile", weekday="tue", local_minute=545)) == 0
    assert choose_variant(variants, frozenset(), Context(device="mobile", weekday="tue", local_minute=605)) == 1
    assert choose_variant(variants, frozenset(), Context(device="desktop", weekday="tue", local_minute=545)) == 1
