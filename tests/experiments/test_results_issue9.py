"""The results page's issue-9 figures, checked against the pure core on known counts:
Benjamini-Hochberg across arms and goals and across a page's running experiments, factorial
main effects and interactions, and a bandit's allocation history (no SRM check, a note)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cms.models import HomePage, LandingPage
from tailored.core import factorial, multiple, stats
from tailored.experiments.models import AllocationChange, Experiment, ExperimentCount
from tailored.experiments.results import goal_family, page_family, results

from .conftest import make_experiment

pytestmark = pytest.mark.django_db
HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)


def counts(experiment: Experiment, arm: str, exposures: int, **conversions: int) -> None:
    ExperimentCount.objects.create(experiment=experiment, arm=arm, goal="", hour=HOUR, exposures=exposures)
    for goal, converted in conversions.items():
        ExperimentCount.objects.create(experiment=experiment, arm=arm, goal=goal, hour=HOUR, conversions=converted)


def test_every_arm_on_every_goal_is_benjamini_hochberg_adjusted():
    experiment = make_experiment(key="g", target="block", goals="click, purchase", arms=[("control", 1, {}), ("b", 1, {}), ("c", 1, {})])
    counts(experiment, "control", 1000, click=100, purchase=20)
    counts(experiment, "b", 1000, click=135, purchase=24)
    counts(experiment, "c", 1000, click=95, purchase=40)
    family = goal_family(experiment)
    control = {"click": stats.Counts(100, 1000), "purchase": stats.Counts(20, 1000)}
    arms = {("b", "click"): 135, ("c", "click"): 95, ("b", "purchase"): 24, ("c", "purchase"): 40}
    raw = [stats.two_proportion_z_test(control[goal], stats.Counts(arms[(arm, goal)], 1000)).p_value for arm, goal in arms]
    assert [(c.arm, c.goal) for c in family] == list(arms)
    assert [c.p_value for c in family] == pytest.approx(raw)
    expected = multiple.benjamini_hochberg(raw)
    assert [c.adjusted for c in family] == pytest.approx(expected.adjusted)
    assert [c.rejected for c in family] == list(expected.rejected)


def test_the_running_experiments_of_a_page_are_adjusted_together_on_their_primary_goals(editor):
    home = HomePage.objects.get()
    first = make_experiment(page=home, key="first", target="block", arms=[("control", 1, {}), ("b", 1, {})])
    second = make_experiment(page=home, key="second", target="block", goals="purchase", arms=[("control", 1, {}), ("x", 1, {})])
    make_experiment(page=home, key="draft", target="block", status="draft", arms=[("control", 1, {}), ("y", 1, {})])
    counts(first, "control", 800, click=80)
    counts(first, "b", 800, click=110)
    counts(second, "control", 500, purchase=10)
    counts(second, "x", 500, purchase=12)
    family = page_family(first)
    assert [(c.experiment, c.arm, c.goal) for c in family] == [("first", "b", "click"), ("second", "x", "purchase")]
    raw = [stats.two_proportion_z_test(stats.Counts(80, 800), stats.Counts(110, 800)).p_value,
           stats.two_proportion_z_test(stats.Counts(10, 500), stats.Counts(12, 500)).p_value]
    assert [c.adjusted for c in family] == pytest.approx(multiple.benjamini_hochberg(raw).adjusted)
    html = editor.get(f"/admin/experiments/{first.pk}/").content.decode()
    assert "data-tl-page-family" in html and 'data-tl-comparison="second:x"' in html


CELLS = {  # headline x button, conversions out of 1000 each
    "headline=old,button=grey": 100, "headline=new,button=grey": 130,
    "headline=old,button=green": 115, "headline=new,button=green": 160,
}


def test_a_factorial_experiments_effects_match_the_core(editor):
    experiment = make_experiment(key="f", target="block", arms=[(key, 1, {}) for key in CELLS])
    for key, converted in CELLS.items():
        counts(experiment, key, 1000, click=converted)
    found = results(experiment)
    grid = {(0, 0): stats.Counts(100, 1000), (1, 0): stats.Counts(130, 1000),
            (0, 1): stats.Counts(115, 1000), (1, 1): stats.Counts(160, 1000)}
    expected = factorial.factorial_effects(("headline", "button"), grid)
    assert [a.label for a in found.arms] == ["old · grey", "new · grey", "old · green", "new · green"]  # short, for charts
    assert [e.name for e in found.effects] == ["headline", "button", "headline x button"]
    assert [e.estimate for e in found.effects] == pytest.approx([e.estimate for e in expected])
    assert [e.p_value for e in found.effects] == pytest.approx([e.p_value for e in expected])
    assert found.effects[0].estimate == pytest.approx(((0.13 - 0.10) + (0.16 - 0.115)) / 2)  # by hand
    html = editor.get(f"/admin/experiments/{experiment.pk}/").content.decode()
    assert "data-tl-effects" in html and 'data-tl-effect="headline x button"' in html


def test_an_incomplete_grid_says_why_it_has_no_effects():
    experiment = make_experiment(key="f", target="block", arms=[(key, 1, {}) for key in list(CELLS)[:3]])
    for key in list(CELLS)[:3]:
        counts(experiment, key, 100, click=10)
    found = results(experiment)
    assert found.effects == () and "full grid" in found.factorial_problem


def test_a_bandits_page_shows_its_allocation_history_and_no_srm(editor):
    page = LandingPage(title="Bandit", slug="bandit", body=[])
    HomePage.objects.get().add_child(instance=page)
    experiment = make_experiment(page=page, key="bandit", target="block", allocation="thompson",
                                 arms=[("control", 50, {}), ("b", 50, {})])
    counts(experiment, "control", 300, click=10)
    counts(experiment, "b", 900, click=90)  # far from 50/50, as the bandit meant
    for i, share in enumerate((0.5, 0.8, 0.95)):
        AllocationChange.objects.create(experiment=experiment, at=HOUR + timedelta(hours=i),
                                        weights={"control": 1 - share, "b": share}, counts={"control": [0, 0], "b": [0, 0]})
    assert results(experiment).srm is None
    html = editor.get(f"/admin/experiments/{experiment.pk}/").content.decode()
    assert "data-tl-bandit-note" in html and "not a fixed-horizon test" in html
    assert "Share of new visitors per arm after each reallocation" in html and "data-tl-allocations" in html
    assert "95.0%" in html and "data-tl-srm" not in html
