"""The experiment journey: two consenting visitors, in two browsers, land in different arms of the
demo's running 50/50 test; each sees the same arm on every reload, each clicks its button; the
worker's flush moves the counts into the database and the editor's results page shows one
exposure and one conversion per arm."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, expect

from cms.models import ArticlePage
from tailored.experiments import counting
from tailored.experiments.models import Experiment, ExperimentCount
from tailored.experiments.services import experiment_cache
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_editor_journey import log_in
from tests.experiments.conftest import visitor_in
from tests.helpers import signed_visitor_id

BUTTONS = {"control": "See the products", "curious": "What made the cut?"}


@pytest.fixture(autouse=True)
def fresh_experiment_cache():
    # The database is flushed after the journey: its compiled experiments must not outlive it.
    yield
    experiment_cache.clear()


def visitor_browser(browser: Browser, site_url: str, visitor_id: str):
    """A browser whose visitor already said yes, with a known pseudonymous id."""
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    context.add_cookies([
        {"name": "tl_consent", "value": "analytics.personalization", "url": site_url},
        {"name": "tl_vid", "value": signed_visitor_id(visitor_id), "url": site_url, "httpOnly": True},
    ])
    return context


def wait_for_conversions(expected: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pending = counting.counters().pending("article-cta")
        if sum(n for (_, _, goal, stat), n in pending.items() if goal == "click" and stat == "c") >= expected:
            return
        assert time.monotonic() < deadline, f"conversions not counted: {dict(pending)}"
        time.sleep(0.1)


def test_two_visitors_see_their_own_arms_and_both_conversions_are_counted(site_url, browser):
    article_url = site_url + ArticlePage.objects.get(slug="which-button").url
    live = experiment_cache.refresh().by_key["article-cta"]
    contexts = {arm: visitor_browser(browser, site_url, visitor_in(live, arm)) for arm in BUTTONS}

    for arm, context in contexts.items():
        page = context.new_page()
        for _ in range(3):  # the same arm on every reload
            page.goto(article_url)
            expect(page.locator(".tl-experiment")).to_have_attribute("data-tl-arm", arm)
            expect(page.get_by_role("link", name=BUTTONS[arm])).to_be_visible()
            other = next(label for key, label in BUTTONS.items() if key != arm)
            expect(page.get_by_text(other)).to_have_count(0)
        page.get_by_role("link", name=BUTTONS[arm]).click()  # the click leaves in a beacon
        page.wait_for_url("**/electronics/")
    wait_for_conversions(2)

    assert counting.flush(["article-cta"]) > 0  # what the worker does every few seconds
    experiment = Experiment.objects.get(key="article-cta")
    rows = {(row.arm, row.goal): row for row in ExperimentCount.objects.filter(experiment=experiment)}
    for arm in BUTTONS:
        assert rows[(arm, "")].exposures == 1
        assert rows[(arm, "click")].conversions == 1

    editor = browser.new_context(user_agent=DESKTOP_CHROME).new_page()
    log_in(editor, site_url)
    editor.goto(f"{site_url}/admin/experiments/{experiment.pk}/")
    for arm in BUTTONS:
        row = editor.locator(f'tr[data-tl-arm="{arm}"]')
        expect(row.locator("[data-tl-exposures]")).to_have_text("1")
        expect(row.locator("[data-tl-conversions]")).to_have_text("1")
    expect(editor.locator("svg.tl-chart")).to_have_count(2)
    for context in contexts.values():
        context.close()
