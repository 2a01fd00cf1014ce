"""The editor's mistake (issue 16, item 1): on the homepage, whose hero is a Personalized block, an
editor rewrites the fallback's heading, clears the page title by mistake and saves. Wagtail's own
error message answers (no server error), their new heading is still in the form; they put the
title back, publish, and a new visitor sees the new heading."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from cms.models import HomePage
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_editor_journey import SCREENSHOTS, log_in, publish

# The homepage hero's fallback (fixtures/demo/home.json): what a visitor no variant matches sees.
FALLBACK_HERO = "#block-a1f0e6a2-7c1b-4d33-9d7e-1b2c3d4e5f00-section"
NEW_HEADING = "Spring things for every day"
COULD_NOT_SAVE = "The page could not be saved due to validation errors"


def new_visitor_sees(browser: Browser, site_url: str) -> str:
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    page.goto(site_url + "/")
    heading = page.locator(".hero__heading").first.inner_text()
    context.close()
    return heading


def test_an_editor_saves_with_a_mistake_sees_why_fixes_it_and_publishes(site_url, browser):
    home = HomePage.objects.get()
    title = home.title
    editor = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 1000})
    page = editor.new_page()
    server_errors = []
    page.on("response", lambda response: response.status >= 500 and server_errors.append(response.url))
    log_in(page, site_url)
    page.goto(f"{site_url}/admin/pages/{home.pk}/edit/")

    heading = page.locator(FALLBACK_HERO).get_by_label(re.compile(r"^Heading"))
    heading.fill(NEW_HEADING)
    page.locator("#id_title").fill("")  # the mistake
    page.get_by_role("button", name="Save draft").click()

    expect(page.get_by_text(COULD_NOT_SAVE)).to_be_visible()
    expect(page.locator(FALLBACK_HERO).get_by_label(re.compile(r"^Heading"))).to_have_value(NEW_HEADING)
    assert server_errors == []
    page.screenshot(path=str(SCREENSHOTS / "editor-mistake.png"))  # Wagtail's message, the input kept

    page.locator("#id_title").fill(title)
    publish(page)
    assert server_errors == []
    editor.close()
    assert new_visitor_sees(browser, site_url) == NEW_HEADING
