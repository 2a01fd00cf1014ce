"""The decision-keyed page cache (issue 21 item 3): a consenting visitor's page is rendered once
per set of decisions, served again without rendering, never to a visitor whose decisions differ,
and emptied on publish."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from cms.models import HomePage, ProductPage
from tailored import conf
from tailored.blocks import page_cache
from tailored.experiments.models import Experiment
from tailored.experiments.services import experiment_cache
from tests.helpers import (
    ELECTRONICS_HERO,
    OUTDOORS_HERO,
    consent_cookies,
    experiment_cache_cleared,
    make_fan,
    with_locale_middleware,
)

pytestmark = pytest.mark.django_db

HEADER = "X-Tailored-Page-Cache"
fresh_experiment_cache = pytest.fixture(autouse=True, name="fresh_experiment_cache")(experiment_cache_cleared)


@pytest.fixture(autouse=True, params=["memory", "redis"])
def _empty_cache(request):
    """Each store: pages in the process's LRU, or in Redis beside the profiles."""
    request.getfixturevalue("memory_store" if request.param == "memory" else "use_redis_store")
    page_cache.invalidate_all()
    yield
    page_cache.invalidate_all()


def answered_fan(visitor_id: str, category: str = "electronics") -> None:
    """A fan who also answered the onboarding survey (an asking survey is never cached: its form
    carries a CSRF token)."""
    make_fan(visitor_id, category)
    conf.get_profile_store().set_preferences(visitor_id, [category])


def get_home(client, visitor_id: str):
    client.cookies.clear()
    consent_cookies(client, visitor_id)
    return client.get("/")


def test_a_second_visit_with_the_same_decisions_is_served_without_rendering(client, django_assert_max_num_queries):
    answered_fan("a" * 32)
    answered_fan("b" * 32)
    first = get_home(client, "a" * 32)
    assert first[HEADER] == "miss" and ELECTRONICS_HERO in first.content.decode()
    assert "private" in first["Cache-Control"]  # still this visitor's page for shared caches
    with django_assert_max_num_queries(8) as queries:
        again = get_home(client, "b" * 32)  # another fan, the same decisions
    assert again[HEADER] == "hit"
    assert again.content == first.content
    # Fewer queries than rendering: the products, images and pages of the blocks are not loaded.
    assert len(queries) < len(_render_queries(client, "a" * 32))


def _render_queries(client, visitor_id: str) -> list:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    page_cache.invalidate_all()
    with CaptureQueriesContext(connection) as captured:
        assert get_home(client, visitor_id)[HEADER] == "miss"
    return captured.captured_queries


def test_a_visitor_whose_decisions_differ_never_gets_anothers_page(client):
    answered_fan("a" * 32, "electronics")
    answered_fan("c" * 32, "outdoors")
    electronics = get_home(client, "a" * 32)
    outdoors = get_home(client, "c" * 32)
    assert outdoors[HEADER] == "miss"
    assert OUTDOORS_HERO in outdoors.content.decode() and ELECTRONICS_HERO not in outdoors.content.decode()
    assert get_home(client, "a" * 32).content == electronics.content


def test_decisions_are_still_counted_on_a_hit(client, personalization):
    personalization(GLOBAL_HOLDOUT_PERCENT=1)  # every choice counts the visitor's holdout exposure
    from tailored.experiments import counting
    from tailored.holdout import HOLDOUT_KEY

    answered_fan("a" * 32)
    answered_fan("b" * 32)
    get_home(client, "a" * 32)
    backend = counting.counters()
    assert not counting.exposure_memo.seen(backend, HOLDOUT_KEY, "b" * 32)
    response = get_home(client, "b" * 32)
    assert response[HEADER] == "hit"
    assert counting.exposure_memo.seen(backend, HOLDOUT_KEY, "b" * 32)


def test_publishing_any_page_empties_the_cache(client):
    answered_fan("a" * 32)
    get_home(client, "a" * 32)
    assert get_home(client, "a" * 32)[HEADER] == "hit"
    HomePage.objects.get().save_revision().publish()
    assert get_home(client, "a" * 32)[HEADER] == "miss"


def test_an_asking_survey_editors_and_visitors_without_an_answer_are_not_cached(client):
    asked = get_home(client, "d" * 32)  # consenting, no history: the survey asks, with a CSRF token
    assert "csrfmiddlewaretoken" in asked.content.decode()
    assert HEADER not in asked
    client.cookies.clear()
    client.force_login(get_user_model().objects.get(username="editor"))
    assert HEADER not in client.get("/")


def test_starting_an_experiment_changes_the_key(client):
    """An experiment on a block's variants is a new decision: no page cached before it is served."""
    from tests.experiments.conftest import make_experiment, running, visitor_in

    make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})])
    in_control = visitor_in(running("hero-test"), "control")
    Experiment.objects.update(status=Experiment.Status.DRAFT)
    experiment_cache.invalidate()
    answered_fan(in_control)
    before = get_home(client, in_control)
    assert ELECTRONICS_HERO in before.content.decode()
    assert get_home(client, in_control)[HEADER] == "hit"
    Experiment.objects.update(status=Experiment.Status.RUNNING)
    experiment_cache.invalidate()
    during = get_home(client, in_control)
    assert during[HEADER] == "miss"
    assert ELECTRONICS_HERO not in during.content.decode()  # the control arm shows the fallback
    assert 'data-tl-experiment="hero-test" data-tl-arm="control"' in during.content.decode()


def test_a_language_chosen_by_cookie_or_header_has_pages_of_its_own(client, settings):
    """LocaleMiddleware without language prefixes: one URL, one set of decisions, and a page per
    language (its template's words are translated), never one language's page for another."""
    with_locale_middleware(settings)
    for visitor in ("a" * 32, "b" * 32, "c" * 32):
        answered_fan(visitor)

    def home(visitor_id: str, language: str):
        client.cookies.clear()
        consent_cookies(client, visitor_id)
        response = client.get("/", HTTP_ACCEPT_LANGUAGE=language)
        assert response["Content-Language"] == language
        return response[HEADER]

    assert home("a" * 32, "en") == "miss"
    assert home("b" * 32, "fr") == "miss"  # the same decisions, another language
    assert (home("c" * 32, "fr"), home("c" * 32, "en")) == ("hit", "hit")


def test_a_publish_while_redis_is_away_reaches_it_when_it_is_back(client, settings, request):
    """A publish during an outage cannot reach Redis: the process remembers it and makes every
    page cached before it stale at its next answer from Redis, so none is served after."""
    if request.node.callspec.params["_empty_cache"] != "redis":
        pytest.skip("the memory store has no outage")
    answered_fan("a" * 32)
    get_home(client, "a" * 32)
    assert get_home(client, "a" * 32)[HEADER] == "hit"
    working = settings.PERSONALIZATION
    settings.PERSONALIZATION = {**working, "REDIS_URL": "redis://127.0.0.1:1/0"}  # refuses connections
    ProductPage.objects.live().first().save_revision().publish()  # its price may show on the homepage
    settings.PERSONALIZATION = working  # Redis is back, with the page cached before the publish
    assert get_home(client, "a" * 32)[HEADER] == "miss"
    assert get_home(client, "a" * 32)[HEADER] == "hit"


def test_publishing_costs_one_command_whatever_redis_holds(client, request, redis_client):
    """A publish increments the generation: no SCAN of the keyspace (profiles included)."""
    if request.node.callspec.params["_empty_cache"] != "redis":
        pytest.skip("the memory store keeps pages in the process")
    answered_fan("a" * 32)
    get_home(client, "a" * 32)
    redis_client.config_resetstat()
    page_cache.invalidate_all()
    stats = redis_client.info("commandstats")
    assert sorted(stats) == ["cmdstat_config|resetstat", "cmdstat_incrby"] and stats["cmdstat_incrby"]["calls"] == 1
    assert get_home(client, "a" * 32)[HEADER] == "miss"
