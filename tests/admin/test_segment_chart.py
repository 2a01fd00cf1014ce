"""The segment edit view's size chart (issue 16 item 3): labelled axes (dates across, visitors
up), the live count's definition said in its caption, and what it covers when training loaded
history: `tailored_train --synthetic` stores past events and replays them into profiles without
segment membership, so no daily segment count exists for those days, and the chart says so."""

from __future__ import annotations

import io
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.urls import reverse

from tailored import conf, services
from tailored.core.types import Event, Snapshot
from tailored.ml.training import load_synthetic
from tailored.models import Event as StoredEvent
from tailored.models import Segment
from tailored.segment_chart import BOTTOM, TOP, nice_step, size_chart
from tailored.segment_insights import daily_sizes, live_counts

DAY = timedelta(days=1)
RETURNING = {"field": "profile.sessions", "op": "gte", "value": 2}


def url(name: str, *args) -> str:
    return reverse(Segment.snippet_viewset.get_url_name(name), args=args)


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.get(username="editor"))
    return client


def chart_of(client, segment: Segment) -> BeautifulSoup:
    response = client.get(url("edit", segment.pk))
    assert response.status_code == 200
    return BeautifulSoup(response.content, "html.parser").select_one("[data-size-chart]")


def today() -> date:
    return datetime.now(UTC).date()


# The geometry (no database) -------------------------------------------------------------------


@pytest.mark.parametrize(("rough", "step"), [(0, 1), (0.5, 1), (1, 1), (1.2, 2), (3, 5), (7, 10), (12, 20), (49, 50), (260, 500)])
def test_steps_are_round_numbers(rough, step):
    assert nice_step(rough) == step


def test_the_visitors_axis_runs_from_zero_past_the_busiest_day_in_round_steps():
    days = [date(2026, 3, 1) + i * DAY for i in range(30)]
    chart = size_chart([(day, 49 if i == 29 else i) for i, day in enumerate(days)])
    assert [tick.label for tick in chart.y_ticks] == ["0", "20", "40", "60"]
    assert chart.y_ticks[0].at == BOTTOM and chart.y_ticks[-1].at == TOP
    tallest = chart.bars[-1]
    assert tallest.count == 49 and tallest.y + tallest.height == BOTTOM
    assert tallest.height == pytest.approx(49 / 60 * (BOTTOM - TOP), abs=0.1)
    assert chart.bars[0].height == 0


def test_the_date_axis_labels_the_last_day_and_every_week_before_it():
    days = [date(2026, 3, 1) + i * DAY for i in range(30)]
    chart = size_chart([(day, 1) for day in days])
    assert [tick.label for tick in chart.x_ticks] == ["2 Mar", "9 Mar", "16 Mar", "23 Mar", "30 Mar"]
    positions = [tick.at for tick in chart.x_ticks]
    assert positions == sorted(positions)
    last_bar = chart.bars[-1]
    assert chart.x_ticks[-1].at == pytest.approx(last_bar.x + last_bar.width / 2, abs=0.2)


def test_the_live_count_stands_apart_after_the_last_day_on_the_same_scale():
    days = [date(2026, 3, 1) + i * DAY for i in range(30)]
    chart = size_chart([(day, 3) for day in days], now=12)
    assert [tick.label for tick in chart.y_ticks] == ["0", "5", "10", "15"]  # the scale reaches the live count
    last = chart.bars[-1]
    assert chart.now.count == 12 and chart.now.x - (last.x + last.width) > last.width  # a slot apart
    assert chart.now.height == pytest.approx(4 * last.height, abs=0.2)
    assert [tick.label for tick in chart.x_ticks][-2:] == ["30 Mar", "now"]
    assert chart.x_ticks[-1].at - chart.x_ticks[-2].at > 30  # the two labels do not overlap


def test_a_segment_nobody_was_in_still_has_a_scale():
    chart = size_chart([(date(2026, 3, 1) + i * DAY, 0) for i in range(7)])
    assert [tick.label for tick in chart.y_ticks] == ["0", "1"]
    assert chart.peak == 0 and all(bar.height == 0 for bar in chart.bars)


# The edit view ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_chart_has_labelled_axes_and_says_what_it_counts(admin_client, memory_store):
    segment = Segment.objects.create(name="Browsers", slug="returning", rule={"field": "profile.page_views", "op": "gte", "value": 1})
    now = time.time()
    for visitor in ("a" * 32, "b" * 32):
        event = Event(f"{visitor[:4]}-1", "page_view", ts=now, attrs={"page_type": "home"})
        conf.get_profile_store().record(visitor, [event], now, Snapshot(device="desktop", segments=frozenset({"returning"})))
    chart = chart_of(admin_client, segment)
    svg = chart.select_one("svg")
    assert svg.select_one("[data-x-title]").text == "Date (UTC)"
    assert svg.select_one("[data-y-title]").text == "Visitors"
    assert [t.text for t in svg.select("[data-y-ticks] text")] == ["0", "1", "2"]
    x_labels = [t.text for t in svg.select("[data-x-ticks] text")]
    assert x_labels[-2] == f"{today().day} {today():%b}" and len(x_labels) == 6
    bars = svg.select(".tl-chart__bars rect")
    assert len(bars) == 30 and bars[-1].select_one("title").text.endswith(": 2 visitors")
    caption = chart.select_one("figcaption").get_text(" ", strip=True)
    assert "different visitors who were in the segment on a visit that day" in caption
    assert "the live count's rule and visitors" in caption
    assert "The last bar, apart, is the live count" in caption
    assert svg.select_one("[data-x-ticks] text:last-child").text == "now"
    now_bar = svg.select_one("[data-now-bar]")
    assert now_bar.select_one("title").text == "Now: 2 visitors match"
    assert float(now_bar["height"]) == float(bars[-1]["height"])  # both visitors match now too
    # The table holds the same numbers, newest first.
    assert [td.text for td in chart.select("tbody tr")[0].select("td")][1] == "2"


@pytest.mark.django_db
def test_the_edit_views_count_is_services_live_count_for_every_segment(memory_store):
    now = time.time()
    for i, device in enumerate(("mobile", "desktop", "mobile", "tablet")):
        events = [Event(f"v{i}-{n}", "page_view", ts=now - n, category="electronics", item="5", attrs={"page_type": "product"}) for n in range(i + 1)]
        conf.get_profile_store().record(f"{i:032x}", events, now, Snapshot(device=device, country="GB"))
    segments = list(Segment.objects.all())
    together = live_counts({s.slug: s.compiled() for s in segments}, now)
    assert together.scanned == 4
    for segment in segments:
        assert (together.matching[segment.slug], together.scanned) == services.live_count(segment.compiled(), now), segment.slug
    assert together.matching["mobile-visitors"] == 2


@pytest.mark.django_db
def test_training_history_has_no_daily_counts_and_the_chart_says_what_it_covers(admin_client, memory_store):
    segment = Segment.objects.create(name="Returning", slug="returning", rule=RETURNING)
    load_synthetic(12, seed=3, days=14, say=io.StringIO().write)
    first_event = StoredEvent.objects.order_by("ts").first().ts.astimezone(UTC).date()
    assert first_event < today() - 7 * DAY  # the synthetic history reaches back past a week
    # The replayed visitors match now, but no day of the history has a segment count.
    matching = live_counts({"returning": segment.compiled()}).matching["returning"]
    assert matching > 0
    assert all(count == 0 for _, count in daily_sizes(["returning"], 30)["returning"])

    coverage = chart_of(admin_client, segment).select_one("[data-chart-coverage]").get_text(" ", strip=True)
    assert coverage.startswith("No visitor was counted in this segment in these 30 days")
    assert f"stored events go back to {first_event.day} {first_event:%b}" in coverage
    assert "tailored_train --synthetic" in coverage

    # A visit today counts: the chart starts there, and still says what came before.
    now = time.time()
    event = Event("today-1", "page_view", ts=now, attrs={"page_type": "home"})
    conf.get_profile_store().record("f" * 32, [event], now, Snapshot(device="desktop", segments=frozenset({"returning"})))
    coverage = chart_of(admin_client, segment).select_one("[data-chart-coverage]").get_text(" ", strip=True)
    assert coverage.startswith(f"No visitor was counted in this segment before {today().day} {today():%b}")


@pytest.mark.django_db
def test_without_older_stored_events_the_chart_makes_no_claim_about_history(admin_client, memory_store):
    segment = Segment.objects.create(name="Returning", slug="returning", rule=RETURNING)
    assert not StoredEvent.objects.exists()
    coverage = chart_of(admin_client, segment).select_one("[data-chart-coverage]")
    assert coverage.get_text(strip=True) == "No visitor was in this segment in the last 30 days."
