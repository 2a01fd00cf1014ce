"""The segment builder journey: an editor builds "Mobile electronics fans" from two rows
(viewed electronics 3 times in 24 hours, AND device is mobile) without writing JSON; no visitor
matches yet; a visitor on an iPhone accepts consent and views three electronics products; the
editor's live count shows that one visitor matches now."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Locator, Page, expect

from cms.models import ProductPage
from tailored.models import Segment
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP_CHROME

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
SCREENSHOT = Path(__file__).parents[2] / "docs" / "screenshots" / "segment-builder.png"
RULE = {
    "all": [
        {"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 3},
        {"field": "context.device", "op": "eq", "value": "mobile"},
    ]
}


@pytest.fixture
def iphone(browser_type):
    """A phone's browser. Its own User-Agent is the iPhone's too: beacons sent while a page
    unloads carry the browser's UA, not the context's, and must not turn the visitor desktop."""
    args = [arg for arg in CHROMIUM_ARGS if not arg.startswith("--user-agent=")]
    browser = browser_type.launch(executable_path=CHROMIUM, args=[*args, f"--user-agent={IPHONE}"])
    context = browser.new_context(
        user_agent=IPHONE, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    yield context
    context.close()
    browser.close()


def segment_url(name: str, *args) -> str:
    return reverse(Segment.snippet_viewset.get_url_name(name), args=args)


def log_in(page: Page, site_url: str) -> None:
    page.goto(site_url + "/admin/")
    page.locator("#id_username").fill("editor")
    page.locator("#id_password").fill("tailored-demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(site_url + "/admin/")


def row(page: Page, number: int) -> Locator:
    return page.locator("[data-rule-builder] [data-rows] > [data-row]").nth(number - 1)


def live_count(page: Page) -> Locator:
    return page.locator("[data-live-count]")


def test_an_editor_builds_a_segment_and_sees_a_mobile_visitor_join_it(site_url, browser, iphone):
    editor = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 1000})
    page = editor.new_page()
    log_in(page, site_url)
    page.goto(site_url + segment_url("add"))
    page.locator("#id_name").fill("Mobile electronics fans")
    page.locator("#id_slug").fill("mobile-electronics-fans")
    page.locator("#id_description").fill("Electronics fans browsing on a phone.")

    # 1. "Viewed electronics 3 times in 24 hours": the new row starts as a page-view count.
    first = row(page, 1)
    expect(first.get_by_role("combobox", name="Condition type")).to_have_value("count")
    expect(first.get_by_role("combobox", name="Event")).to_have_value("page_view")
    first.get_by_role("combobox", name="Category").fill("electronics")
    first.get_by_role("combobox", name="Comparison").select_option("gte")
    first.get_by_role("textbox", name="Value").fill("3")
    expect(first.get_by_role("spinbutton", name="Within hours")).to_have_value("24")

    # 2. AND "device is mobile": a fact with choices offers them in a select.
    page.get_by_role("button", name="Add condition").click()
    second = row(page, 2)
    second.get_by_role("combobox", name="Condition type").select_option("field")
    expect(second.get_by_role("combobox", name="Category")).to_be_hidden()
    second.get_by_role("combobox", name="Fact").select_option("context.device")
    second.get_by_role("combobox", name="Comparison").select_option("eq")
    second.get_by_role("combobox", name="Value").select_option("mobile")
    expect(page.locator("[name=rule-match][value=all]")).to_be_checked()

    # The builder asks the server for the rule and its live count as the editor goes.
    expect(live_count(page)).to_have_text("0 visitors match now")
    page.get_by_role("tab", name="JSON").click()
    expect(page.locator("[data-json]")).to_be_visible()
    assert json.loads(page.locator("[data-json]").input_value()) == RULE
    page.get_by_role("tab", name="Builder").click()
    expect(row(page, 2).get_by_role("combobox", name="Value")).to_have_value("mobile")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Mobile electronics fans")
    segment = Segment.objects.get(slug="mobile-electronics-fans")
    assert segment.rule == RULE

    page.goto(site_url + segment_url("edit", segment.pk))
    expect(live_count(page)).to_have_text("0 visitors match now")

    # A visitor on a phone consents and views three electronics products.
    visitor = iphone.new_page()
    visitor.goto(site_url + "/")
    visitor.get_by_role("button", name="Accept").click()
    expect(visitor.locator("body")).to_have_attribute("data-tl-consent", "granted")
    products = ProductPage.objects.live().filter(category__slug="electronics").order_by("title")[:3]
    for product in products:
        with visitor.expect_response(lambda r: r.url.endswith("/api/events") and r.request.method == "POST") as response:
            visitor.goto(site_url + product.url)
        assert response.value.status == 202

    # The editor reloads the edit view: one visitor matches now; Refresh asks again.
    page.reload()
    expect(live_count(page)).to_have_text("1 visitor matches now")
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("[data-live-scanned]")).to_contain_text("active in the last 24 hours")
    expect(live_count(page)).to_have_text("1 visitor matches now")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1700})
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    editor.close()
