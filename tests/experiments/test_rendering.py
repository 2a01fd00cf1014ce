"""What visitors see and what is counted: a PersonalizedBlock's variants (SSR and GraphQL), an
ExperimentBlock, whole pages; conversions through the events API, once and only after exposure."""

from __future__ import annotations

import json
import time

import pytest

from cms.models import HomePage, LandingPage
from tailored import decisions, erasure
from tailored.experiments import counting
from tailored.experiments.counting import counters, hour_of
from tailored.experiments.models import Experiment, ExperimentCount
from tailored.experiments.services import experiment_cache
from tests.helpers import consent_cookies, signed_visitor_id, ssr_variants

from .conftest import (
    ELECTRONICS_HERO,
    ELECTRONICS_VARIANT,
    FALLBACK_HERO,
    HOME_BLOCK,
    make_experiment,
    running,
    visitor_in,
)

pytestmark = pytest.mark.django_db
VARIANT_ARMS = [("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})]


def exposures(key: str) -> dict[str, int]:
    return {arm: n for (_, arm, goal, stat), n in counters().pending(key).items() if stat == "n"}


def conversions(key: str, goal: str = "click") -> dict[str, int]:
    return {arm: n for (_, arm, g, stat), n in counters().pending(key).items() if stat == "c" and g == goal}


def post_click(client, event_id: str, ts: float | None = None):
    event = {"type": "click", "id": event_id, "ts": int((ts or time.time()) * 1000), "target": "link"}
    return client.post("/api/events", json.dumps({"events": [event]}), content_type="application/json")


def test_two_visitors_see_their_arms_of_a_variants_test_consistently_and_each_counts_once(client, memory_store):
    make_experiment(arms=VARIANT_ARMS)
    live = running("hero-test")
    assert live.variants == {"control": "fallback", "electronics": ELECTRONICS_VARIANT}
    control, treated = visitor_in(live, "control"), visitor_in(live, "electronics")
    for _ in range(3):
        consent_cookies(client, control)
        html = client.get("/").content.decode()
        assert FALLBACK_HERO in html and ELECTRONICS_HERO not in html
        consent_cookies(client, treated)  # no electronics history: only the experiment shows it
        html = client.get("/").content.decode()
        assert ELECTRONICS_HERO in html
        assert ssr_variants(html)[0] == ELECTRONICS_VARIANT
    assert exposures("hero-test") == {"control": 1, "electronics": 1}


def test_without_consent_the_variants_test_shows_control_to_everyone(client, memory_store):
    make_experiment(arms=VARIANT_ARMS)
    live = running("hero-test")
    client.cookies["tl_vid"] = signed_visitor_id(visitor_in(live, "electronics"))  # an id, but no consent
    assert FALLBACK_HERO in client.get("/").content.decode()
    assert exposures("hero-test") == {}


def test_the_block_is_found_by_number_or_id_and_a_wrong_one_is_explained(memory_store):
    from tailored.experiments.targets import problem

    by_number = make_experiment(key="by-number", target_block="1", arms=VARIANT_ARMS)
    assert running(by_number.key).variants["electronics"] == ELECTRONICS_VARIANT
    Experiment.objects.filter(pk=by_number.pk).update(status=Experiment.Status.FINISHED)  # one test per block
    assert running(make_experiment(key="by-id", target_block=HOME_BLOCK, arms=VARIANT_ARMS).key).variants["electronics"] == ELECTRONICS_VARIANT
    wrong = make_experiment(key="wrong", target_block="99", arms=VARIANT_ARMS)
    assert "1 (id 6d1f6c52-4a4e-4a4f-9b0a-0c3f2b1d7a10: Electronics fans, Outdoors fans)" in problem(wrong)


def test_without_arms_a_variants_test_compares_the_fallback_with_every_variant(memory_store):
    make_experiment()
    live = running("hero-test")
    assert list(live.variants) == ["control", "variant-1", "variant-2"]
    assert live.variants["control"] == "fallback"


def test_graphql_resolves_the_same_arm_and_counts_the_exposure(client, memory_store):
    make_experiment(arms=VARIANT_ARMS)
    live = running("hero-test")
    treated = visitor_in(live, "electronics")
    consent_cookies(client, treated)
    query = "{ page(urlPath: \"/\") { ... on HomePage { body { ... on PersonalizedBlock { variant } } } } visitor { assignments { experiment arm } } }"
    reply = client.post("/graphql/", json.dumps({"query": query}), content_type="application/json").json()
    assert "errors" not in reply, reply
    assert reply["data"]["page"]["body"][0]["variant"] == ELECTRONICS_VARIANT
    # This request's profile was read before the assignment: the list shows it from the next one.
    assert exposures("hero-test") == {"electronics": 1}
    # The next request reads the assignment with the profile and lists it.
    response = client.post("/graphql/", json.dumps({"query": query}), content_type="application/json")
    assert response.json()["data"]["visitor"]["assignments"] == [{"experiment": "hero-test", "arm": "electronics"}]
    # What was decided, for the response's extensions.decisions (issue 9).
    decided = {"block": HOME_BLOCK, "variant": ELECTRONICS_VARIANT, "experiment": "hero-test", "arm": "electronics", "holdout": False}
    assert decided in decisions.of(response.wsgi_request)
    assert exposures("hero-test") == {"electronics": 1}


def test_conversions_count_once_per_visitor_and_only_for_the_exposed(client, memory_store):
    make_experiment(arms=VARIANT_ARMS, goals="click")
    live = running("hero-test")
    treated, control, never = visitor_in(live, "electronics"), visitor_in(live, "control"), visitor_in(live, "control", skip=1)
    consent_cookies(client, never)
    assert post_click(client, "never-1").status_code == 202  # clicked without being exposed
    for visitor_id in (treated, control):
        consent_cookies(client, visitor_id)
        client.get("/")
        assert post_click(client, f"{visitor_id[-6:]}-1").status_code == 202
        assert post_click(client, f"{visitor_id[-6:]}-1").status_code == 202  # a replayed event id
        assert post_click(client, f"{visitor_id[-6:]}-2").status_code == 202  # a second click
    assert conversions("hero-test") == {"electronics": 1, "control": 1}
    assert counting.flush() >= 4
    rows = ExperimentCount.objects.filter(experiment__key="hero-test", hour__isnull=False)
    assert {(r.arm, r.goal): (r.exposures, r.conversions) for r in rows} == {
        ("control", ""): (1, 0), ("electronics", ""): (1, 0), ("control", "click"): (0, 1), ("electronics", "click"): (0, 1),
    }


def test_a_click_target_narrows_the_goal(client, memory_store):
    make_experiment(arms=VARIANT_ARMS, goals="click", click_target="hero-cta")
    live = running("hero-test")
    treated = visitor_in(live, "electronics")
    consent_cookies(client, treated)
    client.get("/")
    post_click(client, "other-target")  # target "link"
    assert conversions("hero-test") == {}


def test_previews_never_count(admin_client, memory_store):
    make_experiment(arms=VARIANT_ARMS)
    running("hero-test")
    home = HomePage.objects.get()
    response = admin_client.get(f"/admin/pages/{home.pk}/edit/preview/")
    assert response.status_code in (200, 405)
    assert exposures("hero-test") == {}


EXPERIMENT_SECTION = {
    "type": "experiment",
    "value": {
        "experiment": "cta-test",
        "alternatives": [
            {"type": "item", "id": "5a1c0f3e-0000-4000-8000-000000000001", "value": {"key": "control", "label": "Shop", "content": [{"type": "cta", "value": {"text": "Our picks", "button_label": "Shop now", "url": "/", "style": "primary"}}]}},
            {"type": "item", "id": "5a1c0f3e-0000-4000-8000-000000000002", "value": {"key": "bold", "label": "Bold", "content": [{"type": "cta", "value": {"text": "Our picks", "button_label": "Grab a deal", "url": "/", "style": "primary"}}]}},
        ],
    },
}


@pytest.fixture
def cta_page():
    home = HomePage.objects.get()
    page = LandingPage(title="CTA test", slug="cta-test-page", body=[EXPERIMENT_SECTION])
    home.add_child(instance=page)
    page.save_revision().publish()
    return page


def test_an_experiment_block_shows_each_visitor_their_alternative(client, memory_store, cta_page):
    make_experiment(page=cta_page, key="cta-test", target=Experiment.Target.BLOCK, arms=[("control", 1, {}), ("bold", 1, {})])
    live = running("cta-test")
    for arm, label in (("control", "Shop now"), ("bold", "Grab a deal")):
        consent_cookies(client, visitor_in(live, arm))
        html = client.get(cta_page.url).content.decode()
        assert label in html and f'data-tl-arm="{arm}"' in html
    assert exposures("cta-test") == {"control": 1, "bold": 1}


def test_arms_an_experiment_block_does_not_offer_keep_the_test_from_running(memory_store, cta_page):
    from tailored.experiments.targets import problem

    wrong = make_experiment(page=cta_page, key="cta-test", target=Experiment.Target.BLOCK, arms=[("control", 1, {}), ("b", 1, {})])
    assert problem(wrong) == "arms b are not alternatives of the block (it has control, bold)"
    elsewhere = make_experiment(key="nowhere", target=Experiment.Target.BLOCK, arms=[("control", 1, {}), ("b", 1, {})])
    assert "no experiment block with the key nowhere" in problem(elsewhere)


def test_a_stopped_experiment_block_shows_the_first_alternative_uncounted(client, memory_store, cta_page):
    make_experiment(page=cta_page, key="cta-test", target=Experiment.Target.BLOCK, arms=[("control", 1, {}), ("bold", 1, {})])
    live = running("cta-test")
    bold = visitor_in(live, "bold")
    Experiment.objects.filter(key="cta-test").update(status=Experiment.Status.PAUSED)
    experiment_cache.invalidate()  # update() sends no signal
    assert "cta-test" not in experiment_cache.refresh().by_key  # paused is not live
    consent_cookies(client, bold)
    assert "Shop now" in client.get(cta_page.url).content.decode()
    assert exposures("cta-test") == {}


def test_graphql_exposes_only_the_visitors_alternative(client, memory_store, cta_page):
    make_experiment(page=cta_page, key="cta-test", target=Experiment.Target.BLOCK, arms=[("control", 1, {}), ("bold", 1, {})])
    live = running("cta-test")
    consent_cookies(client, visitor_in(live, "bold"))
    query = '{ page(urlPath: "/cta-test-page/") { ... on LandingPage { body { ... on ExperimentBlock { experiment arm blocks { ... on CTABlock { buttonLabel } } rawValue } } } } }'
    response = client.post("/graphql/", json.dumps({"query": query}), content_type="application/json")
    reply = response.json()
    assert "errors" not in reply, reply
    block = reply["data"]["page"]["body"][0]
    assert (block["experiment"], block["arm"]) == ("cta-test", "bold")
    assert [(d["experiment"], d["arm"], d["variant"]) for d in decisions.of(response.wsgi_request)] == [("cta-test", "bold", "bold")]
    assert block["blocks"] == [{"buttonLabel": "Grab a deal"}]
    assert "Shop now" not in block["rawValue"]
    assert exposures("cta-test") == {"bold": 1}


def test_a_page_test_serves_the_alternative_at_the_original_url(client, memory_store, cta_page):
    home = HomePage.objects.get()
    alternative = LandingPage(title="Alternative", slug="alternative-landing", intro="", body=[
        {"type": "rich_text", "value": "<p>The alternative page</p>"}
    ])
    home.add_child(instance=alternative)
    alternative.save_revision().publish()
    make_experiment(page=cta_page, key="page-test", target=Experiment.Target.PAGE,
                    arms=[("control", 1, {}), ("alt", 1, {"alternative_page": alternative})])
    live = running("page-test")
    consent_cookies(client, visitor_in(live, "alt"))
    response = client.get(cta_page.url)
    assert response.status_code == 200 and "The alternative page" in response.content.decode()
    consent_cookies(client, visitor_in(live, "control"))
    assert "The alternative page" not in client.get(cta_page.url).content.decode()
    assert exposures("page-test") == {"alt": 1, "control": 1}


def test_the_worker_loop_flushes(use_redis_store, redis_client):
    from tailored.experiments.counting import flush_due

    make_experiment(key="t", target=Experiment.Target.BLOCK, arms=[("control", 1, {}), ("b", 1, {})])
    now = time.time()
    counters().expose("t", "b", "v1", now)
    counting.flush_clock.reset()
    assert flush_due() == 1
    assert flush_due() == 0  # not due again yet
    row = ExperimentCount.objects.get(experiment__key="t")
    assert (row.arm, row.exposures, row.hour.timestamp()) == ("b", 1, hour_of(now) * 3600)
    assert not redis_client.keys("tl:v1:xp:{t}:hours*")


def test_a_server_side_purchase_converts_an_exposed_visitor(client, memory_store):
    from tailored import services

    make_experiment(arms=VARIANT_ARMS, goals="purchase")
    live = running("hero-test")
    treated = visitor_in(live, "electronics")
    consent_cookies(client, treated)
    client.get("/")
    request = client.get("/").wsgi_request  # the next request reads the assignment with the profile
    visitor = services.resolve_visitor(request)
    assert visitor.profile.assignments == {"hero-test": "electronics"}
    services.record_events(visitor, [services.purchase_event("A-1", 42.0)])
    services.record_events(visitor, [services.purchase_event("A-1", 42.0)])  # the same order again
    assert conversions("hero-test", "purchase") == {"electronics": 1}


def test_erasing_a_visitor_forgets_their_id_but_keeps_the_counts(client, memory_store):

    make_experiment(arms=VARIANT_ARMS)
    live = running("hero-test")
    treated = visitor_in(live, "electronics")
    consent_cookies(client, treated)
    client.get("/")
    erasure.erase_visitor(treated)
    assert counters().exposed_arm("hero-test", treated) is None
    assert not memory_store.get(treated, time.time()).assignments
    assert exposures("hero-test") == {"electronics": 1}


def test_deleting_an_experiment_clears_its_visitors_arms_and_counters(client, memory_store):
    experiment = make_experiment(arms=VARIANT_ARMS)
    live = running("hero-test")
    treated = visitor_in(live, "electronics")
    consent_cookies(client, treated)
    client.get("/")
    experiment.delete()
    assert not memory_store.get(treated, time.time()).assignments
    assert exposures("hero-test") == {}


def test_the_choice_says_which_experiment_decided(memory_store):
    from tailored.blocks.personalized import PersonalizedBlock
    from tailored.core.types import Consent, Context, Profile, Visitor

    home = HomePage.objects.get()
    block = next(child for child in home.body if child.id == HOME_BLOCK)
    fan = Visitor(id="f" * 32, consent=Consent(decided=True, personalization=True), context=Context(),
                  profile=Profile(visitor_id="f" * 32), segments=frozenset({"electronics-fans"}))
    choice = PersonalizedBlock.choose(block.block, block.value, fan)
    assert (choice.key, choice.experiment, choice.arm) == (ELECTRONICS_VARIANT, None, None)  # the rules chose
    make_experiment(arms=VARIANT_ARMS)
    live = running("hero-test")
    control = visitor_in(live, "control")
    fan_in_control = Visitor(id=control, consent=fan.consent, context=fan.context, profile=Profile(visitor_id=control), segments=fan.segments)
    choice = PersonalizedBlock.choose(block.block, block.value, fan_in_control)
    assert (choice.key, choice.experiment, choice.arm) == ("fallback", "hero-test", "control")
