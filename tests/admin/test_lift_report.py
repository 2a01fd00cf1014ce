"""Reports -> Personalization lift (issue 9 item 7): the figures are the pure core's on the
same counts, server-rendered with SVG charts and no JavaScript; a notice when the holdout is off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from tailored import holdout_admin
from tailored.core import sequential, stats
from tailored.models import HoldoutCount
from tests.experiments.conftest import make_experiment

pytestmark = pytest.mark.django_db
DAY = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.fixture
def editor(client, settings, memory_store):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GLOBAL_HOLDOUT_PERCENT": 5}
    client.force_login(get_user_model().objects.get(username="editor"))
    return client


def counts(group: str, day: int, visitors: int, conversions: int, goal: str = "purchase") -> None:
    hour = DAY + timedelta(days=day)
    HoldoutCount.objects.create(group=group, goal="", hour=hour, visitors=visitors)
    HoldoutCount.objects.create(group=group, goal=goal, hour=hour, conversions=conversions)


def two_days() -> None:
    counts("holdout", 0, 500, 20)
    counts("personalized", 0, 9500, 480)
    counts("holdout", 1, 500, 21)
    counts("personalized", 1, 9500, 520)


def report(editor) -> str:
    html = editor.get("/admin/personalization-lift/").content.decode()
    return html[html.index('class="nice-padding tl-holdout-report"'):]


def test_the_figures_are_the_cores_on_the_same_counts(editor):
    two_days()
    lift = next(lift for lift in holdout_admin.lift_report() if lift.goal == "purchase")
    held, personalized = stats.Counts(41, 1000), stats.Counts(1000, 19000)
    expected = stats.personalization_lift(personalized, held)
    assert (lift.holdout.counts, lift.personalized.counts) == (held, personalized)
    assert lift.comparison == expected
    assert lift.holdout.interval == stats.wilson_interval(held)
    series = sequential.always_valid_series([(stats.Counts(20, 500), stats.Counts(480, 9500)), (held, personalized)])
    assert lift.always_valid == series[-1] and lift.looks == 2
    html = report(editor)
    assert 'data-tl-goal="purchase" data-tl-group="holdout"' in html and ">1000<" in html and ">19000<" in html
    assert f"{expected.absolute_lift.estimate * 100:+.2f} pts" in html
    assert f"{expected.relative_lift.estimate * 100:+.1f}%" in html
    assert f"{expected.test.p_value:.4f}" in html and f"{series[-1].p_value:.4f}" in html


def test_the_report_reads_without_javascript(editor):
    two_days()
    html = report(editor)
    assert "<script" not in html
    assert html.count('class="tl-chart"') == 3  # one SVG per configured goal
    assert "Personalization lift" in editor.get("/admin/").content.decode()  # under Reports
    assert "5%</strong> of consenting visitors" in html and "data-tl-holdout-off" not in html
    sentence = html[html.index('data-tl-sentence="purchase"'):]
    assert "Personalized visitors reached “purchase” at 5.3% against 4.1% in the holdout" in sentence


def test_a_goal_without_visitors_says_so(editor):
    html = report(editor)
    assert "No comparison on “click” yet" in html and ">0<" in html


def test_a_goal_without_conversions_says_so_and_shows_no_ratio_to_zero(editor):
    two_days()  # purchases only
    html = report(editor)
    assert "No “click” conversions counted in either group yet." in html
    assert "nan" not in html and "inf%" not in html
    click = next(lift for lift in holdout_admin.lift_report() if lift.goal == "click")
    assert click.comparison is not None and click.relative_lift is None


def test_with_the_holdout_off_the_report_says_so(client, memory_store):
    client.force_login(get_user_model().objects.get(username="editor"))
    html = report(client)
    assert "data-tl-holdout-off" in html and "The global holdout is off" in html
    # Nothing counted: no 0-100% intervals or bars that look like data, and the page says what will appear.
    assert "100.0%" not in html and 'class="tl-chart"' not in html
    assert html.count("<td data-tl-rate>—</td>") == 6  # two groups, three goals
    assert "appears once each group has visitors: turn the holdout on first" in html


def test_the_report_flushes_pending_counts_first(editor):
    from tailored.experiments.counting import counters
    from tailored.holdout import HOLDOUT_KEY

    counters().expose(HOLDOUT_KEY, "holdout", "v1", DAY.timestamp())
    counters().expose(HOLDOUT_KEY, "personalized", "v2", DAY.timestamp())
    html = report(editor)
    assert html.count("<td data-tl-visitors>1</td>") == 6  # both groups, three goals


def test_an_experiments_results_show_personalizations_own_lift_on_its_goal(editor, settings):
    two_days()
    experiment = make_experiment(goals="purchase", arms=(("control", 50, {"variant": "fallback"}), ("b", 50, {"variant": "1"})))
    html = editor.get(f"/admin/experiments/{experiment.pk}/").content.decode()
    assert "data-tl-global-lift" in html
    assert "5.3%" in html and "4.1%" in html  # 1000/19000 personalized, 41/1000 held out
    assert "/admin/personalization-lift/" in html
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GLOBAL_HOLDOUT_PERCENT": 0}
    assert "data-tl-global-lift" not in editor.get(f"/admin/experiments/{experiment.pk}/").content.decode()
