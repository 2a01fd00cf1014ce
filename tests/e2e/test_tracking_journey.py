"""The tracking journey: what a consenting visitor does on the page reaches their profile (read
back through GET /api/me/data); events made offline wait in localStorage and are stored exactly
once when the browser is back online, even when sent twice; under Global Privacy Control nothing
leaves the browser."""

from __future__ import annotations

import json

import pytest
from django.core.signals import request_started
from playwright.sync_api import BrowserContext, Page, expect

from cms.models import ProductPage
from tests.e2e.conftest import DESKTOP_CHROME

# A short window, so that every product page scrolls.
SHORT_VIEWPORT = {"width": 1000, "height": 320}
STATS = "tailored.stats()"


@pytest.fixture
def event_posts():
    """Every request the server receives for /api/events, beacons included (Playwright does not
    report beacons sent while a page unloads)."""
    hits: list[str] = []

    def record(sender, environ, **kwargs):
        if environ.get("PATH_INFO") == "/api/events":
            hits.append(environ.get("REQUEST_METHOD", ""))

    request_started.connect(record)
    yield hits
    request_started.disconnect(record)


def a_product() -> ProductPage:
    return ProductPage.objects.live().filter(category__slug="electronics").order_by("title").first()


def open_with_consent(context: BrowserContext, url: str) -> Page:
    """Open `url`, accept the banner (the page reloads), and wait until its page view is sent."""
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")
    page.wait_for_function("tailored.stats().sent >= 1")
    return page


def is_event_batch(response) -> bool:
    return response.url.endswith("/api/events") and response.request.method == "POST"


def profile_of(context: BrowserContext, site_url: str) -> dict:
    reply = context.request.get(site_url + "/api/me/data")
    assert reply.status == 200, f"GET /api/me/data answered {reply.status}: {reply.text()[:200]}"
    return reply.json()["profile"]


def wait_for_profile(page: Page, site_url: str, ready, seconds: float = 10) -> dict:
    """Poll the export until `ready(profile)`: beacons and timed flushes land asynchronously."""
    for _ in range(int(seconds * 5)):
        profile = profile_of(page.context, site_url)
        if ready(profile):
            return profile
        page.wait_for_timeout(200)
    return profile


def counts(profile: dict) -> dict:
    return profile.get("event_counts", {})


def click_spaced(page: Page, selector: str, times: int) -> None:
    """Separate clicks: more than the tracker's 400 ms debounce apart."""
    for _ in range(times):
        page.locator(selector).click()
        page.wait_for_timeout(450)


def test_a_visitors_actions_reach_their_profile(site_url, browser):
    product = a_product()
    context = browser.new_context(user_agent=DESKTOP_CHROME, viewport=SHORT_VIEWPORT)
    page = open_with_consent(context, site_url + product.url)

    # Scrolling to the bottom passes 25, 50, 75 and 100 %; the batch goes out on the 2 s timer.
    with page.expect_request(
        lambda r: r.url.endswith("/api/events") and '"depth":100' in (r.post_data or "")
    ):
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.locator("[data-track=product-title]").click()
    page.get_by_role("button", name="Add to cart").click()
    page.evaluate("tailored.flush()")

    profile = wait_for_profile(page, site_url, lambda p: counts(p).get("add_to_cart") == 1)
    assert counts(profile)["page_view"] == 1
    assert counts(profile)["scroll_depth"] == 4
    assert profile["scroll"]["count"] == 4
    assert profile["scroll"]["average_depth"] == pytest.approx(62.5)  # (25 + 50 + 75 + 100) / 4
    assert counts(profile)["click"] == 2  # the title and the button
    assert profile["cart"] == {str(product.id): 1}
    assert profile["recent_items"][0]["item"] == str(product.id)

    # Leaving the page beacons its dwell time: the page's and the description section's.
    page.goto(site_url + "/")
    profile = wait_for_profile(page, site_url, lambda p: counts(p).get("dwell") == 2)
    assert counts(profile)["dwell"] == 2
    assert profile["dwell"][product.category.slug]["seconds"] > 0

    page.get_by_role("searchbox", name="Search products").fill("noise cancelling")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/?q=noise+cancelling")
    profile = wait_for_profile(page, site_url, lambda p: p.get("recent_searches"))
    assert profile["recent_searches"][0] == "noise cancelling"

    # Sorting a category (client-side) is a filter change.
    page.goto(site_url + product.category.url)
    page.get_by_label("Sort by").select_option("price-desc")
    prices = [float(p.strip("£")) for p in page.locator(".product-card .price").all_inner_texts()]
    assert prices == sorted(prices, reverse=True)
    page.evaluate("tailored.flush()")
    profile = wait_for_profile(page, site_url, lambda p: counts(p).get("filter_change"))
    assert counts(profile)["filter_change"] == 1
    context.close()


def test_offline_events_wait_in_local_storage_and_are_stored_exactly_once(site_url, browser):
    product = a_product()
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = open_with_consent(context, site_url + product.url)
    add, remove = "[data-tl-action=add_to_cart]", "[data-tl-action=remove_from_cart]"

    context.set_offline(True)
    assert page.evaluate("navigator.onLine") is False
    click_spaced(page, "[data-track=product-title]", 2)
    page.locator(add).dblclick()  # a double click is one click: debounced
    page.wait_for_timeout(450)
    click_spaced(page, add, 2)
    click_spaced(page, remove, 1)
    page.evaluate("tailored.flush()")

    # 6 clicks (title x2, add x3, remove), 3 add_to_cart, 1 remove_from_cart.
    stored = page.evaluate("JSON.parse(localStorage.getItem('tl_queue'))")
    assert len(stored) == 10
    assert len({event["id"] for event in stored}) == 10
    assert page.evaluate(STATS) == {"queued": 10, "dropped": 0, "sent": 1}
    snapshot = json.dumps(stored)

    # Back online: the `online` event retries the stored queue.
    with page.expect_response(is_event_batch) as response:
        context.set_offline(False)
    assert response.value.ok
    page.wait_for_function("tailored.stats().queued === 0 && tailored.stats().sent === 11")
    assert page.evaluate("localStorage.getItem('tl_queue')") is None

    # The same events again, as if the first answer had been lost: the server deduplicates by id.
    page.evaluate("queue => localStorage.setItem('tl_queue', queue)", snapshot)
    with page.expect_response(is_event_batch) as response:
        page.evaluate("tailored.flush()")
    assert response.value.ok
    page.wait_for_function("tailored.stats().sent === 21")

    profile = profile_of(context, site_url)
    assert counts(profile)["page_view"] == 1
    assert counts(profile)["click"] == 6
    assert counts(profile)["add_to_cart"] == 3
    assert counts(profile)["remove_from_cart"] == 1
    assert profile["cart"] == {str(product.id): 2}
    assert page.evaluate(STATS) == {"queued": 0, "dropped": 0, "sent": 21}
    context.close()


def test_an_overflowing_offline_queue_drops_the_oldest_events_and_counts_them(site_url, browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = open_with_consent(context, site_url + "/")

    context.set_offline(True)
    page.evaluate(
        "for (let i = 0; i < 205; i++) tailored.track('search', {query: 'q' + i}); tailored.flush()"
    )
    assert page.evaluate(STATS) == {"queued": 200, "dropped": 5, "sent": 1}
    assert page.evaluate("JSON.parse(localStorage.getItem('tl_queue'))[0].query") == "q5"

    # 200 events go out as two batches of 100 (the endpoint's limit).
    accepted = []
    page.on(
        "response", lambda r: accepted.append(r.json()["accepted"]) if is_event_batch(r) else None
    )
    context.set_offline(False)
    page.wait_for_function("tailored.stats().sent === 201")
    page.wait_for_timeout(200)
    assert sorted(accepted) == [100, 100]
    assert page.evaluate("localStorage.getItem('tl_dropped')") == "5"  # kept across pages

    profile = profile_of(context, site_url)
    assert counts(profile)["search"] == 200
    assert profile["recent_searches"][0] == "q204"
    context.close()


@pytest.mark.parametrize("with_header", [True, False], ids=["sec-gpc-header", "script-only"])
def test_global_privacy_control_sends_nothing_even_after_accepting(
    site_url, browser, event_posts, with_header
):
    headers = {"Sec-GPC": "1"} if with_header else {}
    context = browser.new_context(
        user_agent=DESKTOP_CHROME, viewport=SHORT_VIEWPORT, extra_http_headers=headers
    )
    context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    page = context.new_page()
    page.goto(site_url + a_product().url)

    if with_header:
        # The server honours the header: no banner, and a stored "yes" still does not count.
        expect(page.locator(".consent-banner")).to_be_hidden()
        page.evaluate("tailored.consent.set({analytics: true, personalization: true})")
    else:
        # The page reads the browser's signal itself: no banner either. Asked through the
        # consent API, the server sees no signal and takes the "yes"; the tracker still honours
        # the browser's.
        expect(page.locator(".consent-banner")).to_be_hidden()
        page.evaluate("tailored.consent.set({analytics: true, personalization: true})")
        expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")

    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.get_by_role("button", name="Add to cart").click()
    page.locator("[data-track=product-title]").click()
    page.evaluate("tailored.track('search', {query: 'anything'}); tailored.flush()")
    page.wait_for_timeout(2500)  # past the tracker's 2 s flush timer
    assert page.evaluate(STATS) == {"queued": 0, "dropped": 0, "sent": 0}
    assert page.evaluate("localStorage.getItem('tl_queue')") is None
    page.goto(site_url + "/")  # leaving would beacon whatever was queued
    page.wait_for_timeout(500)
    assert event_posts == []
    if not with_header:  # the visitor has an id here, and nothing is held about them
        assert counts(profile_of(context, site_url)) == {}
    context.close()
