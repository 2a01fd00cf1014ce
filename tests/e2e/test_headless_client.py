"""The headless client example agrees with the server-rendered page: a browser visitor consents
and views three electronics products; examples/headless_client.py, sent that visitor's cookies and
User-Agent, gets the variant keys Playwright sees on the SSR homepage."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_foundation_journey import ELECTRONICS_HERO, electronics_products, hero

EXAMPLE = Path(__file__).parents[2] / "examples" / "headless_client.py"
ELECTRONICS_VARIANT = "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01"


def load_example():
    spec = importlib.util.spec_from_file_location("headless_client", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_headless_client_sees_the_variants_the_browser_sees(site_url, browser):
    client = load_example()
    fan = browser.new_context(user_agent=DESKTOP_CHROME)
    page = fan.new_page()
    page.goto(site_url + "/")
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")
    for url in electronics_products(site_url):
        with page.expect_response(lambda r: r.url.endswith("/api/events")) as response:
            page.goto(url)
        assert response.value.status == 202

    page.goto(site_url + "/")
    expect(hero(page)).to_have_text(ELECTRONICS_HERO)
    ssr_variants = [el.get_attribute("data-tl-variant") for el in page.locator("[data-tl-variant]").all()]
    assert ssr_variants and ssr_variants[0] == ELECTRONICS_VARIANT

    cookies = {c["name"]: c["value"] for c in fan.cookies() if c["name"] in ("tl_consent", "tl_vid")}
    assert set(cookies) == {"tl_consent", "tl_vid"}
    headless = client.fetch_homepage(site_url, cookies, user_agent=DESKTOP_CHROME)
    assert client.variant_keys(headless) == ssr_variants

    # Without the cookies the same client is an anonymous visitor: the fallbacks.
    anonymous = client.variant_keys(client.fetch_homepage(site_url, {}, user_agent=DESKTOP_CHROME))
    assert anonymous[0] == "fallback"
    fan.close()


def test_the_headless_client_forwards_the_browsers_privacy_signals(site_url):
    client = load_example()
    # A visitor whose browser sends Global Privacy Control (or Do Not Track) accepts everything.
    for header in ("Sec-GPC", "DNT"):
        answer, cookies = client.set_consent(site_url, True, True, visitor_headers={header.lower(): "1"})
        assert (answer["granted"], answer["reason"]) == ([], "opted_out_by_browser")
        assert cookies.get("tl_consent") == "none" and not cookies.get("tl_vid")
    # Without the signals the same call records the accept and issues an id.
    answer, cookies = client.set_consent(site_url, True, True, visitor_headers={"Accept": "text/html"})
    assert (answer["granted"], answer["reason"]) == (["analytics", "personalization"], None)
    assert cookies["tl_consent"] == "analytics.personalization" and cookies["tl_vid"]
    assert client.forwarded_headers({"sec-gpc": "1", "DNT": "1", "Cookie": "x"}, "UA") == {
        "User-Agent": "UA", "Accept": "application/json", "Sec-GPC": "1", "DNT": "1",
    }
