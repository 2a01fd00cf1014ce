"""Factorial experiments over several experiment blocks: blocks share the experiment's key, each
varies one factor, the arms are the cells "factor=level,..."; each block shows its factor's
level in the visitor's cell, and the visitor is exposed once, to the whole cell."""

from __future__ import annotations

import pytest

from cms.models import HomePage, LandingPage
from tailored.experiments.counting import counters
from tailored.experiments.models import Experiment
from tailored.experiments.targets import problem
from tests.helpers import consent_cookies

from .conftest import make_experiment, running, visitor_in

pytestmark = pytest.mark.django_db
CELLS = ["headline=a,button=grey", "headline=b,button=grey", "headline=a,button=green", "headline=b,button=green"]
SHOWN = {"a": "Plain headline", "b": "Bold headline", "grey": "Grey button", "green": "Green button"}


def factor_block(factor: str, levels: tuple[str, str], n: int) -> dict:
    alternatives = [
        {"type": "item", "id": f"5a1c0f3e-0000-4000-8000-00000000{n}{i:03d}", "value": {"key": level, "label": level, "content": [
            {"type": "cta", "value": {"text": factor, "button_label": SHOWN[level], "url": "/", "style": "primary"}}]}}
        for i, level in enumerate(levels)
    ]
    return {"type": "experiment", "value": {"experiment": "fx", "factor": factor, "alternatives": alternatives}}


@pytest.fixture
def factorial_page():
    page = LandingPage(title="Factorial", slug="factorial", body=[
        factor_block("headline", ("a", "b"), 1), factor_block("button", ("grey", "green"), 2),
    ])
    HomePage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    return LandingPage.objects.get(pk=page.pk)  # as published


def test_each_block_shows_its_factors_level_of_the_visitors_cell(client, memory_store, factorial_page):
    make_experiment(page=factorial_page, key="fx", target=Experiment.Target.BLOCK, arms=[(cell, 1, {}) for cell in CELLS])
    live = running("fx")
    assert live.factors == ("headline", "button")
    for cell in CELLS:
        consent_cookies(client, visitor_in(live, cell))
        html = client.get(factorial_page.url).content.decode()
        headline, button = (part.split("=")[1] for part in cell.split(","))
        assert SHOWN[headline] in html and SHOWN[button] in html
        assert all(label not in html for level, label in SHOWN.items() if level not in (headline, button))
        assert html.count(f'data-tl-arm="{cell}"') == 2
    exposed = {arm: n for (_, arm, _, stat), n in counters().pending("fx").items() if stat == "n"}
    assert exposed == dict.fromkeys(CELLS, 1)  # one exposure per visitor, to the whole cell


def test_a_stopped_factorial_shows_each_blocks_first_alternative(client, memory_store, factorial_page):
    html = client.get(factorial_page.url).content.decode()
    assert "Plain headline" in html and "Grey button" in html and "Bold headline" not in html


def test_factorial_misconfigurations_are_explained(memory_store, factorial_page):
    plain = make_experiment(page=factorial_page, key="fx", target="block", arms=[("a", 1, {}), ("b", 1, {})])
    assert "every arm keyed" in problem(plain)
    Experiment.objects.filter(pk=plain.pk).delete()
    other = make_experiment(page=factorial_page, key="fx", target="block",
                            arms=[("headline=a,colour=red", 1, {}), ("headline=b,colour=blue", 1, {})])
    assert problem(other) == "an experiment block has the factor “button”; the arms' factors are headline, colour"
    Experiment.objects.filter(pk=other.pk).delete()
    missing = make_experiment(page=factorial_page, key="fx", target="block",
                              arms=[("headline=a,button=grey", 1, {}), ("headline=c,button=grey", 1, {})])
    assert problem(missing) == "factor headline: levels c are not alternatives of its block"


def test_promoting_a_cell_gives_each_block_its_level(memory_store, factorial_page):
    from tailored.experiments.promote import promote

    experiment = make_experiment(page=factorial_page, key="fx", target="block", arms=[(cell, 1, {}) for cell in CELLS])
    promote(experiment, "headline=b,button=green")
    page = LandingPage.objects.get(pk=factorial_page.pk)
    labels = [block.value["button_label"] for block in page.body]
    assert labels == ["Bold headline", "Green button"]
    assert Experiment.objects.get(pk=experiment.pk).winner == "headline=b,button=green"


def test_graphql_gives_each_block_its_level_and_the_cell_as_arm(client, memory_store, factorial_page):
    import json

    make_experiment(page=factorial_page, key="fx", target="block", arms=[(cell, 1, {}) for cell in CELLS])
    consent_cookies(client, visitor_in(running("fx"), "headline=b,button=grey"))
    query = '{ page(urlPath: "/factorial/") { ... on LandingPage { body { ... on ExperimentBlock { arm armLabel } } } } }'
    reply = client.post("/graphql/", json.dumps({"query": query}), content_type="application/json").json()
    body = reply["data"]["page"]["body"]
    assert body == [{"arm": "headline=b,button=grey", "armLabel": "b"}, {"arm": "headline=b,button=grey", "armLabel": "grey"}]
