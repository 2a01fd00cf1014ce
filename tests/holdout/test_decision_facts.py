"""SSR and GraphQL carry the same decision facts: a variants experiment's experiment and arm on
the personalized block's wrapper, and a whole-page experiment's alternative through `page(urlPath)`."""

from __future__ import annotations

import json
import re

import pytest

from cms.models import HomePage, LandingPage
from tailored import decisions
from tailored.experiments.models import Experiment
from tailored.experiments.services import experiment_cache
from tests.experiments.conftest import make_experiment, running, visitor_in
from tests.helpers import consent_cookies, make_fan

from .conftest import ELECTRONICS_VARIANT, HOME_BLOCK

pytestmark = pytest.mark.django_db
VARIANT_ARMS = [("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})]


def test_ssr_wrappers_name_the_experiment_and_arm_that_graphql_lists(client, memory_store):
    make_experiment(arms=VARIANT_ARMS)
    live = running("hero-test")
    for arm, variant in (("electronics", ELECTRONICS_VARIANT), ("control", "fallback")):
        consent_cookies(client, visitor_in(live, arm))
        html = client.get("/").content.decode()
        wrapper = re.search(rf'<div class="tl-personalized" data-tl-variant="{variant}"[^>]*data-tl-block-id="{HOME_BLOCK}"[^>]*>', html)
        assert wrapper and f'data-tl-experiment="hero-test" data-tl-arm="{arm}"' in wrapper.group(0)
        response = client.post("/graphql/", json.dumps({"query": '{ page(urlPath: "/") { ... on HomePage { body { ... on PersonalizedBlock { variant } } } } }'}), content_type="application/json")
        decided = {"block": HOME_BLOCK, "variant": variant, "experiment": "hero-test", "arm": arm, "holdout": False}
        assert decided in decisions.of(response.wsgi_request)


def test_a_cached_fragment_keeps_each_visitors_arm(client, memory_store):
    # The experiment's attributes are part of the fragment key: the electronics variant chosen
    # by the experiment and the same variant chosen by the rules do not share cached HTML.
    make_experiment(arms=VARIANT_ARMS)
    live = running("hero-test")
    consent_cookies(client, visitor_in(live, "electronics"))
    assert 'data-tl-arm="electronics"' in client.get("/").content.decode()
    Experiment.objects.all().delete()
    running_experiments = experiment_cache.refresh().by_key
    assert not running_experiments
    fan = visitor_in(live, "control")
    make_fan(fan)
    consent_cookies(client, fan)
    html = client.get("/").content.decode()
    assert f'data-tl-variant="{ELECTRONICS_VARIANT}"' in html and "data-tl-experiment" not in html


@pytest.fixture
def page_test():
    home = HomePage.objects.get()
    original = LandingPage(title="Original", slug="original-landing", intro="", body=[{"type": "rich_text", "value": "<p>The original page</p>"}])
    alternative = LandingPage(title="Alternative", slug="alternative-landing", intro="", body=[{"type": "rich_text", "value": "<p>The alternative page</p>"}])
    for page in (original, alternative):
        home.add_child(instance=page)
        page.save_revision().publish()
    make_experiment(page=original, key="page-test", target=Experiment.Target.PAGE,
                    arms=[("control", 1, {}), ("alt", 1, {"alternative_page": alternative})])
    return original, running("page-test")


def test_graphql_page_and_ssr_agree_on_a_whole_page_experiment(client, memory_store, page_test):
    original, live = page_test
    query = '{ page(urlPath: "/original-landing/") { title ... on LandingPage { body { rawValue } } } }'
    for arm, title, text in (("alt", "Alternative", "The alternative page"), ("control", "Original", "The original page")):
        consent_cookies(client, visitor_in(live, arm))
        ssr = client.get(original.url).content.decode()
        reply = client.post("/graphql/", json.dumps({"query": query}), content_type="application/json").json()
        assert "errors" not in reply, reply
        assert text in ssr and reply["data"]["page"]["title"] == title
        assert text in reply["data"]["page"]["body"][0]["rawValue"]


def test_graphql_previews_of_a_page_under_test_show_the_page_itself(admin_client, memory_store, page_test):
    _, live = page_test
    consent_cookies(admin_client, visitor_in(live, "alt"))
    query = '{ page(urlPath: "/original-landing/", preview: {segments: []}) { title } }'
    reply = admin_client.post("/graphql/", json.dumps({"query": query}), content_type="application/json").json()
    assert "errors" not in reply, reply
    assert reply["data"]["page"]["title"] == "Original"
