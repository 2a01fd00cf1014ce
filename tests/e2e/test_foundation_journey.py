"""The foundation journey: consent, three electronics products, the electronics hero; a visitor
who declined sees the fallback; GraphQL with the first visitor's cookie agrees with the page."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page, expect

from cms.models import ProductPage
from tests.e2e.conftest import DESKTOP_CHROME

HOMEPAGE_OPERATION = (Path(__file__).parents[2] / "graphql" / "operations" / "homepage.graphql").read_text()
ELECTRONICS_HERO = "The latest in electronics, picked for you"
FALLBACK_HERO = "Good things for every day"


def electronics_products(site_url: str) -> list[str]:
    products = ProductPage.objects.live().filter(category__slug="electronics").order_by("title")[:3]
    return [site_url + product.url for product in products]


def hero(page: Page):
    return page.locator(".hero__heading").first


def test_consenting_fan_sees_the_electronics_hero_and_a_decliner_does_not(site_url, browser):
    products = electronics_products(site_url)
    fan = browser.new_context(user_agent=DESKTOP_CHROME)
    page = fan.new_page()

    page.goto(site_url + "/")
    expect(hero(page)).to_have_text(FALLBACK_HERO)
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")
    assert any(c["name"] == "tl_vid" for c in fan.cookies())

    for url in products:
        with page.expect_response(lambda r: r.url.endswith("/api/events")) as response:
            page.goto(url)
        assert response.value.status == 202

    page.goto(site_url + "/")
    expect(hero(page)).to_have_text(ELECTRONICS_HERO)
    ssr_variant = page.locator("[data-tl-variant]").first.get_attribute("data-tl-variant")

    # A headless client with the same cookie gets the same variant, and only that one.
    reply = fan.request.post(
        site_url + "/graphql/",
        data=json.dumps({"query": HOMEPAGE_OPERATION}),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 200
    first_block = reply.json()["data"]["page"]["body"][0]
    assert first_block["variant"] == ssr_variant
    assert first_block["blocks"][0]["heading"] == ELECTRONICS_HERO
    assert FALLBACK_HERO not in reply.text()

    decliner = browser.new_context(user_agent=DESKTOP_CHROME)
    other = decliner.new_page()
    sent = []
    other.on("request", lambda r: sent.append(r.url) if r.url.endswith("/api/events") else None)
    other.goto(site_url + "/")
    other.get_by_role("button", name="Decline").click()
    expect(other.locator("body")).to_have_attribute("data-tl-consent", "declined")
    for url in products:
        other.goto(url)
    other.goto(site_url + "/")
    expect(hero(other)).to_have_text(FALLBACK_HERO)
    assert sent == []
    assert not any(c["name"] == "tl_vid" for c in decliner.cookies())
