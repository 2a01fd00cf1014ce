"""No storage before consent (issue 15 item 4) and the privacy centre (item 6), in Debian's Chromium
against the demo shop on Redis (the first two journeys on the memory store too): after five pages an undecided visitor holds no cookie and no
localStorage entry, a visitor who declined holds only their answer; a consenting visitor's tracker
then sets the time-zone hint, and withdrawing removes it. The privacy centre, reached from the
footer and from tailored.privacy.open(), changes the choice, downloads and erases, with no API
call and no developer tools; under Global Privacy Control an accept is recorded as declined."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import BrowserContext, Page, expect

from cms.models import ArticlePage, CategoryPage, HomePage, ProductPage
from tests.e2e.conftest import DESKTOP_CHROME

ZONE = "America/Chicago"


@pytest.fixture(params=["redis", "memory"])
def any_store_site_url(request, live_server) -> str:
    """The live demo shop on each profile store (the Redis one is `site_url`'s)."""
    if request.param == "redis":
        return request.getfixturevalue("site_url")
    request.getfixturevalue("memory_store")
    call_command("load_demo", stdout=io.StringIO())
    return live_server.url


def five_pages(site_url: str) -> list[str]:
    """Five different pages of the demo: home, a category, two products and an article."""
    pages = [
        HomePage.objects.get(),
        CategoryPage.objects.live().order_by("title").first(),
        *ProductPage.objects.live().order_by("title")[:2],
        ArticlePage.objects.live().order_by("title").first(),
    ]
    assert all(pages)
    return [site_url + page.url for page in pages]


def new_visitor(browser, **options) -> tuple[BrowserContext, Page]:
    context = browser.new_context(user_agent=DESKTOP_CHROME, timezone_id=ZONE, **options)
    return context, context.new_page()


def browse(page: Page, url: str) -> None:
    """Open `url` and do what a visitor does, so that anything the tracker would store, it stores."""
    page.goto(url)
    page.wait_for_function("window.tailored && document.readyState === 'complete'")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.locator("main").first.click(position={"x": 5, "y": 5})
    page.evaluate("tailored.track('search', {query: 'anything'}); tailored.flush()")
    page.wait_for_timeout(300)  # past the tracker's scroll measurement


def jar(context: BrowserContext) -> dict[str, str]:
    return {cookie["name"]: cookie["value"] for cookie in context.cookies()}


def local_storage(page: Page) -> dict[str, str]:
    return page.evaluate("Object.fromEntries(Object.entries(localStorage))")


def test_an_undecided_visitor_holds_nothing_after_five_pages(any_store_site_url, browser):
    site_url = any_store_site_url
    context, page = new_visitor(browser)
    for url in five_pages(site_url):
        browse(page, url)
        expect(page.locator(".consent-banner")).to_be_visible()
    page.goto(site_url + "/")  # leaving the last page would beacon what was queued
    assert jar(context) == {}
    assert local_storage(page) == {}
    assert page.evaluate("tailored.stats()") == {"queued": 0, "dropped": 0, "sent": 0}
    context.close()


def test_a_declined_visitor_holds_only_their_answer_after_five_pages(any_store_site_url, browser):
    site_url = any_store_site_url
    context, page = new_visitor(browser)
    page.goto(site_url + "/")
    page.get_by_role("button", name="Decline all").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "declined")
    for url in five_pages(site_url):
        browse(page, url)
        expect(page.locator(".consent-banner")).to_be_hidden()
    page.goto(site_url + "/")
    assert jar(context) == {"tl_consent": "none"}
    assert local_storage(page) == {}
    context.close()


def test_a_consenting_visitor_gets_the_time_zone_hint_and_loses_it_on_withdrawal(site_url, browser):
    context, page = new_visitor(browser)
    page.goto(site_url + "/")
    assert jar(context) == {}
    page.get_by_role("button", name="Accept all").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")
    page.wait_for_function("document.cookie.includes('tl_tz=')")
    cookies = jar(context)
    # With personalization the home page asks the onboarding survey, whose form sets csrftoken.
    assert set(cookies) == {"tl_consent", "tl_vid", "tl_tz", "csrftoken"}
    assert (cookies["tl_consent"], cookies["tl_tz"]) == ("analytics.personalization.marketing", "America%2FChicago")

    page.locator("footer").get_by_role("link", name="Privacy centre").click()
    page.get_by_role("button", name="Decline all").click()
    expect(page.locator("[data-tl-privacy-notice]")).to_have_text("Your choice is saved.")
    assert jar(context) == {"tl_consent": "none"}
    assert local_storage(page) == {}
    context.close()


def test_the_privacy_centre_changes_the_choice_downloads_and_erases(site_url, browser, redis_client):
    context, page = new_visitor(browser)
    page.goto(site_url + "/")
    page.locator("footer").get_by_role("link", name="Privacy centre").click()
    expect(page.locator("[data-tl-privacy-summary]")).to_contain_text("You have not chosen yet")
    page.get_by_label("Analytics").check()
    page.get_by_role("button", name="Save my choice").click()
    expect(page.locator("[data-tl-privacy-summary]")).to_have_text("You allowed analytics.")

    browse(page, five_pages(site_url)[2])  # a product: its page view is sent and stored
    page.wait_for_function("tailored.stats().sent >= 1")
    page.evaluate("tailored.privacy.open()")
    page.wait_for_url("**/privacy-centre/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data").click()
    data = json.loads(Path(download.value.path()).read_text())
    visitor_id = data["visitor_id"]
    assert data["consent"] == {"analytics": True, "personalization": False, "marketing": False}
    assert data["profile"]["page_views"] == 0  # analytics only: events, but no profile
    assert redis_client.keys(f"*{visitor_id}*")  # its dedup marks, at least

    page.get_by_role("button", name="Erase my data").click()
    expect(page.locator("[data-tl-privacy-notice]")).to_contain_text("Everything held about you was erased")
    assert jar(context) == {}
    assert local_storage(page) == {}
    assert redis_client.keys(f"*{visitor_id}*") == []
    context.close()


def test_under_gpc_an_accept_is_recorded_as_declined_and_the_visitor_told_why(site_url, browser):
    context, page = new_visitor(browser, extra_http_headers={"Sec-GPC": "1"})
    page.goto(site_url + "/")
    expect(page.locator(".consent-banner")).to_be_hidden()
    answer = page.evaluate("tailored.consent.set({analytics: true, personalization: true})")
    assert (answer["granted"], answer["reason"]) == ([], "opted_out_by_browser")
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "declined")

    page.evaluate("tailored.privacy.open()")
    page.get_by_role("button", name="Accept all").click()
    expect(page.locator("[data-tl-privacy-notice]")).to_contain_text("Global Privacy Control or Do Not Track")
    assert jar(context) == {"tl_consent": "none"}
    assert local_storage(page) == {}
    context.close()
