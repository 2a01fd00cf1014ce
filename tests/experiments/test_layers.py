"""Exclusive layers: experiments of one layer get disjoint slices of the layer's draw, so a
visitor is in at most one of them; an experiment outside the layer is independent of it. And
the page editor refuses what cannot run: a full layer, two tests on one personalized block."""

from __future__ import annotations

import time

import pytest

from cms.models import HomePage
from tailored import conf
from tailored.core.bucketing import assign
from tailored.core.types import Consent, Context, Visitor
from tailored.experiments.models import Experiment
from tailored.experiments.services import experiment_cache, group_for
from tailored.experiments.targets import problem

from .conftest import make_experiment, post_page_experiments

pytestmark = pytest.mark.django_db
ARMS = [("control", 1, {}), ("b", 1, {})]
IDS = [f"{i:032x}" for i in range(10_000)]


def page_test(key: str, **fields) -> Experiment:
    return make_experiment(page=HomePage.objects.get(), key=key, target=Experiment.Target.PAGE, arms=ARMS, **fields)


def compiled() -> dict:
    experiment_cache.invalidate()
    return dict(experiment_cache.refresh().by_key)


def test_two_experiments_in_one_layer_never_share_a_visitor_and_one_outside_is_independent(memory_store):
    from cms.models import LandingPage

    other = LandingPage(title="Other", slug="other", body=[])
    HomePage.objects.get().add_child(instance=other)
    page_test("a", layer="hero", layer_share_percent=50)
    make_experiment(page=other, key="b", target=Experiment.Target.PAGE, arms=ARMS, layer="hero", layer_share_percent=40)
    page_free = LandingPage(title="Free", slug="free", body=[])
    HomePage.objects.get().add_child(instance=page_free)
    make_experiment(page=page_free, key="free", target=Experiment.Target.PAGE, arms=ARMS)
    live = compiled()
    assert live["a"].spec.layer_range == (0.0, 0.5) and live["b"].spec.layer_range == pytest.approx((0.5, 0.9))
    in_a = {v for v in IDS if assign(live["a"].spec, v) is not None}
    in_b = {v for v in IDS if assign(live["b"].spec, v) is not None}
    assert not in_a & in_b
    assert len(in_a) / len(IDS) == pytest.approx(0.5, abs=0.02) and len(in_b) / len(IDS) == pytest.approx(0.4, abs=0.02)
    # Outside the layer: "free" splits the visitors of "a" and everyone else alike.
    share_b = lambda ids: sum(assign(live["free"].spec, v).arm == "b" for v in ids) / len(ids)  # noqa: E731
    assert share_b(in_a) == pytest.approx(share_b(set(IDS) - in_a), abs=0.03)
    assert live["a"].layer_mates == {"b"} and live["free"].layer_mates == frozenset()


def test_a_full_layer_leaves_the_newest_out_and_a_pause_moves_nobody(memory_store):
    from cms.models import LandingPage

    pages = []
    for slug in ("p1", "p2", "p3"):
        page = LandingPage(title=slug, slug=slug, body=[])
        HomePage.objects.get().add_child(instance=page)
        pages.append(page)
    make_experiment(page=pages[0], key="a", target="page", arms=ARMS, layer="hero", layer_share_percent=60)
    make_experiment(page=pages[1], key="b", target="page", arms=ARMS, layer="hero", layer_share_percent=40)
    late = make_experiment(page=pages[2], key="late", target="page", arms=ARMS, layer="hero", layer_share_percent=10)
    live = compiled()
    assert "late" not in live and "layer “hero” is full" in problem(late)
    before = live["b"].spec.layer_range
    Experiment.objects.filter(key="a").update(status=Experiment.Status.PAUSED)
    assert compiled()["b"].spec.layer_range == before  # the paused one keeps its slice


def test_a_visitor_in_one_experiment_of_the_layer_never_enters_another(memory_store):
    """Even when slices move (an experiment finished), the stored arm keeps visitors exclusive."""
    from cms.models import LandingPage

    other = LandingPage(title="Other", slug="other", body=[])
    HomePage.objects.get().add_child(instance=other)
    page_test("a", layer="hero", layer_share_percent=50)
    make_experiment(page=other, key="b", target="page", arms=ARMS, layer="hero", layer_share_percent=50)
    store = conf.get_profile_store()
    someone = next(v for v in IDS if assign(compiled()["b"].spec, v) is not None)
    store.assign(someone, "a", "control")  # assigned to "a" when the slices were elsewhere
    visitor = Visitor(id=someone, consent=Consent(decided=True, analytics=True, personalization=True),
                      context=Context(device="desktop"), profile=store.get(someone, time.time()), segments=frozenset())
    assert group_for(visitor, compiled()["b"]) is None


def post_experiments(editor, experiments: list[dict]):
    """Publish an empty landing page with these experiments, through the page editor."""
    from cms.models import LandingPage

    page = LandingPage.objects.filter(slug="edited").first()
    if page is None:
        page = LandingPage(title="Edited", slug="edited", body=[])
        HomePage.objects.get().add_child(instance=page)
    return post_page_experiments(editor, page, experiments)


def test_the_page_editor_refuses_two_running_tests_on_one_personalized_block_or_page(editor):
    response = post_experiments(editor, [{"key": "one"}, {"key": "two", "target_block": "1"}])  # "" is the first too
    assert response.status_code == 200 and not Experiment.objects.filter(page__slug="edited").exists()
    assert "The experiment one already runs on this personalized block" in response.content.decode()
    response = post_experiments(editor, [{"key": "one", "target": "page"}, {"key": "two", "target": "page"}])
    assert response.status_code == 200 and "The experiment one already runs on this page" in response.content.decode()
    response = post_experiments(editor, [{"key": "one"}, {"key": "two", "status": "paused"}])
    assert response.status_code == 302 and Experiment.objects.filter(page__slug="edited").count() == 2


def test_the_page_editor_refuses_a_layer_over_100_percent(editor):
    from cms.models import LandingPage

    other = LandingPage(title="Other", slug="other", body=[])
    HomePage.objects.get().add_child(instance=other)
    make_experiment(page=other, key="elsewhere", target="page", arms=ARMS, layer="hero", layer_share_percent=70)
    response = post_experiments(editor, [{"key": "here", "layer": "hero", "layer_share_percent": "40"}])
    assert response.status_code == 200 and "would share 110% of its visitors (70% on other pages)" in response.content.decode()
    response = post_experiments(editor, [{"key": "here", "layer": "hero", "layer_share_percent": "30"}])
    assert response.status_code == 302


def test_of_two_running_tests_on_one_block_the_older_runs_and_the_newer_says_why(memory_store):
    arms = [("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})]
    older = make_experiment(key="older", arms=arms)
    newer = make_experiment(key="newer", target_block="1", arms=arms)
    live = compiled()
    assert "older" in live and "newer" not in live
    assert problem(older) is None
    assert problem(newer) == "the experiment older already runs on the same personalized block; only one test may run on it at a time"


def test_a_test_cannot_be_started_beside_one_running_on_the_same_block(editor):
    arms = [("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})]
    waiting = make_experiment(key="waiting", status=Experiment.Status.DRAFT, arms=arms)  # the older one
    make_experiment(key="runs", arms=arms)
    editor.post(f"/admin/experiments/{waiting.pk}/start/")
    waiting.refresh_from_db()
    assert waiting.status == Experiment.Status.DRAFT
    assert "the experiment runs already runs on the same personalized block" in problem(waiting)
