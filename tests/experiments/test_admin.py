"""The editor's side: create an experiment in the page editor, start it, read the results
(table, SRM warning, sample-size hint, SVG charts without JavaScript), promote a winner."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cms.models import HomePage, LandingPage
from tailored.experiments.models import Experiment, ExperimentCount

from .conftest import (
    ELECTRONICS_HERO,
    ELECTRONICS_VARIANT,
    HOME_BLOCK,
    make_experiment,
    post_page_experiments,
)
from .test_rendering import EXPERIMENT_SECTION

pytestmark = pytest.mark.django_db
HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)


def counts(experiment: Experiment, arm: str, exposures: int, conversions: int, goal: str = "click") -> None:
    ExperimentCount.objects.create(experiment=experiment, arm=arm, goal="", hour=HOUR, exposures=exposures)
    ExperimentCount.objects.create(experiment=experiment, arm=arm, goal=goal, hour=HOUR, conversions=conversions)


def test_an_editor_creates_an_experiment_in_the_page_editor(editor):
    page = LandingPage(title="Empty", slug="empty-landing", body=[])
    HomePage.objects.get().add_child(instance=page)
    html = editor.get(f"/admin/pages/{page.pk}/edit/").content.decode()
    assert "Experiments" in html and "experiments-TOTAL_FORMS" in html
    experiment = {"name": "Button words", "key": "button-words", "status": "draft", "target": "block", "goals": "click, add_to_cart"}
    arms = [{"key": "control", "weight": "50"}, {"key": "bold", "label": "Bold words", "weight": "50"}]
    response = post_page_experiments(editor, page, [experiment], [arms])
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    experiment = Experiment.objects.get(key="button-words")
    assert experiment.page_id == page.pk and experiment.goal_list == ["click", "add_to_cart"]
    assert [(a.key, a.weight) for a in experiment.arms.all()] == [("control", 50), ("bold", 50)]
    # Back in the editor, the experiment links to its results.
    html = editor.get(f"/admin/pages/{page.pk}/edit/").content.decode()
    assert f"/admin/experiments/{experiment.pk}/" in html


def test_unknown_goals_are_refused():
    experiment = Experiment(page=HomePage.objects.get(), name="x", key="x", goals="click, teleport")
    with pytest.raises(Exception, match="teleport"):
        experiment.full_clean()


def test_the_results_page_reads_without_javascript(editor):
    experiment = make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})])
    counts(experiment, "control", 1000, 100)
    counts(experiment, "electronics", 1000, 140)
    html = editor.get(f"/admin/experiments/{experiment.pk}/").content.decode()
    assert 'data-tl-arm="electronics"' in html and ">1000<" in html and ">140<" in html
    assert "14.0%" in html and "+4.00 pts" in html and "+40.0%" in html  # rate, absolute and relative lift
    assert html.count("class=\"tl-chart\"") == 2 and "Conversion rate per arm with 95% intervals" in html
    assert "data-tl-srm" not in html
    # 14% vs 10% on 1000 each: p ≈ 0.006, but the test runs and is 7% of its planned sample: no
    # winner yet, and promoting says what it risks (issue 16 item 2).
    assert "data-tl-leader" not in html and "No conclusion yet: 1000 of the" in html
    assert 'data-tl-promote="conclusive"' not in html and html.count('data-tl-promote="risky"') == 2
    assert "no conclusive lift yet" in html
    assert "data-tl-sample-size" in html
    index = editor.get("/admin/experiments/").content.decode()
    assert experiment.name in index
    assert "/admin/experiments/" in editor.get("/admin/").content.decode()  # Reports → Experiments


def test_a_conclusive_winner_is_named_and_promote_is_the_primary_action(editor):
    experiment = make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})])
    counts(experiment, "control", 4000, 400)
    counts(experiment, "electronics", 4000, 600)  # conclusive by the always-valid p while running
    html = editor.get(f"/admin/experiments/{experiment.pk}/").content.decode()
    assert "Leading with a conclusive lift" in html and "data-tl-leader" in html
    assert html.count('data-tl-promote="conclusive"') == 1 and html.count('data-tl-promote="risky"') == 1


def test_a_sample_ratio_mismatch_is_flagged(editor):
    experiment = make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})])
    counts(experiment, "control", 1000, 100)
    counts(experiment, "electronics", 800, 80)
    html = editor.get(f"/admin/experiments/{experiment.pk}/").content.decode()
    assert "data-tl-srm" in html and "Sample ratio mismatch" in html


def test_start_pause_finish_are_posts_for_publishers(editor, client):
    experiment = make_experiment(status=Experiment.Status.DRAFT)
    assert editor.get(f"/admin/experiments/{experiment.pk}/start/").status_code == 405
    editor.post(f"/admin/experiments/{experiment.pk}/start/")
    experiment.refresh_from_db()
    assert experiment.status == "running"
    editor.post(f"/admin/experiments/{experiment.pk}/pause/")
    experiment.refresh_from_db()
    assert experiment.status == "paused"
    client.logout()
    assert client.post(f"/admin/experiments/{experiment.pk}/finish/").status_code == 302  # to the login
    experiment.refresh_from_db()
    assert experiment.status == "paused"


def test_promoting_a_variant_makes_it_the_fallback_and_finishes(editor):
    experiment = make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})])
    response = editor.post(f"/admin/experiments/{experiment.pk}/promote/", {"arm": "electronics"})
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.status, experiment.winner) == ("finished", "electronics")
    home = HomePage.objects.get()
    block = next(b for b in home.body.raw_data if b["id"] == HOME_BLOCK)
    assert block["value"]["fallback"][0]["value"]["heading"] == ELECTRONICS_HERO
    assert any(v["id"] == ELECTRONICS_VARIANT for v in block["value"]["variants"])  # targeting kept
    assert not home.has_unpublished_changes
    # Everyone without a matching variant now gets the winner.
    assert ELECTRONICS_HERO in editor.get("/").content.decode()


def test_promoting_an_alternative_replaces_the_experiment_block(editor):
    page = LandingPage(title="CTA", slug="cta-promote", body=[EXPERIMENT_SECTION])
    HomePage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    experiment = make_experiment(page=page, key="cta-test", target="block", arms=[("control", 1, {}), ("bold", 1, {})])
    editor.post(f"/admin/experiments/{experiment.pk}/promote/", {"arm": "bold"})
    page.refresh_from_db()
    assert [b["type"] for b in page.body.raw_data] == ["cta"]
    assert page.body.raw_data[0]["value"]["button_label"] == "Grab a deal"
    experiment.refresh_from_db()
    assert experiment.status == "finished"


def test_promotion_refuses_a_page_with_a_draft(editor):
    experiment = make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})])
    home = HomePage.objects.get()
    home.title = "Draft title"
    home.save_revision()
    editor.post(f"/admin/experiments/{experiment.pk}/promote/", {"arm": "electronics"})
    experiment.refresh_from_db()
    assert experiment.status == "running"


def test_the_demo_runs_one_50_50_experiment_on_an_article(client, memory_store):
    import io

    from django.core.management import call_command

    from cms.models import ArticlePage
    from tests.helpers import consent_cookies

    from .conftest import running, visitor_in

    experiment = Experiment.objects.get(key="article-cta")
    assert experiment.status == "running" and [a.weight for a in experiment.arms.all()] == [50, 50]
    call_command("load_demo", stdout=io.StringIO())  # idempotent: nothing new
    assert Experiment.objects.filter(key="article-cta").count() == 1
    article = ArticlePage.objects.get(slug="which-button")
    live = running("article-cta")
    consent_cookies(client, visitor_in(live, "curious"))
    assert "What made the cut?" in client.get(article.url).content.decode()
