"""Impressions in the browser (issue 17 items 1 and 7): the homepage's personalized block scrolled
into view for a second counts one impression with its decision and the seconds seen; scrolled past
quickly it counts none; a click inside it carries the decision once per page view."""

from __future__ import annotations

import json

from playwright.sync_api import Page

from cms.models import HomePage
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_tracking_journey import open_with_consent
from tests.helpers import HOME_BLOCK

# A short window: the hero fits in it, and the page scrolls well past it.
VIEWPORT = {"width": 1000, "height": 480}
# Every page starts scrolled to the bottom (the hero out of view), and links do not navigate, so
# the events stay in this page's fetches (Playwright does not see beacons of a page going away).
INIT = """
addEventListener("DOMContentLoaded", () => scrollTo(0, 1e6));
addEventListener("click", e => e.target.closest("a") && e.preventDefault(), true);
"""
HERO = f'[data-tl-block-id="{HOME_BLOCK}"]'


def sent_events(page: Page) -> list[dict]:
    events: list[dict] = []

    def record(request):
        if request.url.endswith("/api/events") and request.method == "POST":
            events.extend(json.loads(request.post_data or "{}").get("events", []))

    page.on("request", record)
    return events


def hero_impressions(events: list[dict]) -> list[dict]:
    # The homepage has other personalized blocks: only the hero's impressions are counted here.
    return [e for e in events if e["type"] == "impression" and e["block"] == HOME_BLOCK]


def send_now(page: Page, events: list[dict], count: int) -> None:
    page.evaluate("tailored.flush()")
    page.wait_for_function(f"tailored.stats().queued === 0 && tailored.stats().sent >= {count}")


def test_a_block_seen_for_a_second_counts_once_and_a_quick_pass_counts_none(site_url, browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME, viewport=VIEWPORT)
    context.add_init_script(INIT)
    page = open_with_consent(context, site_url + "/")
    events = sent_events(page)
    assert page.evaluate("scrollY") > 0

    # Scrolled past quickly: in view for 0.3 s.
    page.evaluate(f"document.querySelector('{HERO}').scrollIntoView()")
    page.wait_for_timeout(300)
    page.evaluate("scrollTo(0, 1e6)")
    page.wait_for_timeout(300)
    sent = page.evaluate("tailored.stats().sent")
    send_now(page, events, sent)
    assert hero_impressions(events) == []

    # In view for 1.5 s, then scrolled away: one impression, with the seconds it was seen.
    page.evaluate(f"document.querySelector('{HERO}').scrollIntoView()")
    page.wait_for_timeout(1500)
    page.evaluate("scrollTo(0, 1e6)")
    page.wait_for_timeout(200)
    page.evaluate(f"document.querySelector('{HERO}').scrollIntoView()")  # back again: still one
    page.wait_for_timeout(1200)
    page.evaluate("scrollTo(0, 1e6)")
    page.wait_for_timeout(200)
    send_now(page, events, sent + 1)
    impressions = hero_impressions(events)
    assert len(impressions) == 1, impressions
    home = HomePage.objects.live().first()
    seen = impressions[0]
    assert (seen["block"], seen["variant"], seen["page"]) == (HOME_BLOCK, "fallback", home.pk)
    assert 1.3 <= seen["seconds"] <= 3

    # A click inside the block carries its decision; the next click in it is a plain click.
    before = page.evaluate("tailored.stats().sent")
    link = page.locator(f"{HERO} a").first
    link.click()
    page.wait_for_timeout(450)
    link.click()
    send_now(page, events, before + 2)
    clicks = [e for e in events if e["type"] == "click"]
    assert [c.get("block") for c in clicks] == [HOME_BLOCK, None]
    assert clicks[0]["variant"] == "fallback"
    context.close()
