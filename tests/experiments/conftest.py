"""Experiments test helpers. The running-experiment cache is process-wide: each test starts and
ends with it empty and due for a reload, so an experiment rolled back with a test never leaks
into the next one (here or in another package)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cms.models import HomePage
from tailored.core.bucketing import assign
from tailored.experiments.models import Experiment, ExperimentArm
from tailored.experiments.services import LiveExperiment, experiment_cache
from tests.helpers import (  # noqa: F401 (re-exported to the tests)
    ELECTRONICS_HERO,
    ELECTRONICS_VARIANT,
    FALLBACK_HERO,
    HOME_BLOCK,
    OUTDOORS_HERO,
    OUTDOORS_VARIANT,
    experiment_cache_cleared,
)

fresh_experiment_cache = pytest.fixture(autouse=True, name="fresh_experiment_cache")(experiment_cache_cleared)


def make_experiment(
    page=None,
    key: str = "hero-test",
    target: str = Experiment.Target.VARIANTS,
    arms: Sequence[tuple[str, int, dict]] = (),
    status: str = Experiment.Status.RUNNING,
    **fields,
) -> Experiment:
    page = page or HomePage.objects.get()
    experiment = Experiment(page=page, name=key.title(), key=key, status=status, target=target, **fields)
    experiment.arms = [ExperimentArm(key=arm, weight=weight, **extra) for arm, weight, extra in arms]
    experiment.save()
    return experiment


def running(key: str) -> LiveExperiment:
    """The compiled experiment, after a reload of the cache."""
    experiment_cache.invalidate()
    return experiment_cache.refresh().by_key[key]


def visitor_in(live: LiveExperiment, arm: str, holdout: bool = False, skip: int = 0) -> str:
    """A visitor id (32 hex digits) the hash puts in `arm` (the `skip`-th such id)."""
    for i in range(1, 5000):
        visitor_id = f"{i:032x}"
        assignment = assign(live.spec, visitor_id)
        if assignment is not None and assignment.arm == arm and assignment.in_holdout == holdout:
            if skip == 0:
                return visitor_id
            skip -= 1
    raise AssertionError(f"no visitor lands in {arm}")


# What the page editor's Experiments tab posts for one experiment, before the test's own values.
EDITOR_FORM_DEFAULTS = {
    "name": "", "status": "running", "target": "variants", "goals": "click", "traffic_percent": "100",
    "holdout_percent": "0", "target_block": "", "seed": "", "click_target": "", "allocation": "fixed",
    "reallocate_every_minutes": "60", "layer": "", "layer_share_percent": "100",
}


def post_page_experiments(editor, page, experiments: Sequence[dict], arms: Sequence[Sequence[dict]] = ()):
    """Publish `page` from the page editor with these experiments (each over EDITOR_FORM_DEFAULTS,
    named by its key) and, per experiment, these arms ({"key", "weight", ...})."""
    from wagtail.test.utils.form_data import querydict_from_html

    data = querydict_from_html(editor.get(f"/admin/pages/{page.pk}/edit/").content.decode(), form_id="page-edit-form")
    data.update({"body-count": "0", "experiments-TOTAL_FORMS": str(len(experiments)), "experiments-INITIAL_FORMS": "0"})
    for i, fields in enumerate(experiments):
        own_arms = arms[i] if i < len(arms) else ()
        values = {**EDITOR_FORM_DEFAULTS, "name": fields["key"], "ORDER": str(i + 1), **fields,
                  "arms-TOTAL_FORMS": str(len(own_arms)), "arms-INITIAL_FORMS": "0", "arms-MIN_NUM_FORMS": "0",
                  "arms-MAX_NUM_FORMS": "1000"}
        for n, arm in enumerate(own_arms):
            values.update({f"arms-{n}-{name}": value for name, value in {"ORDER": str(n + 1), **arm}.items()})
        data.update({f"experiments-{i}-{name}": value for name, value in values.items()})
    data["action-publish"] = "action-publish"  # experiments are saved with the published page, like its content
    return editor.post(f"/admin/pages/{page.pk}/edit/", data)
