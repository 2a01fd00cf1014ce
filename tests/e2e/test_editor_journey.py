"""The editor's journey (issue 5): log into the admin, add a "mobile morning visitors" variant to
the homepage hero, preview it as that audience, publish; a phone in a time zone where it is
morning now sees it, a desktop in the same zone sees the fallback. Screenshots of the editor's
steps go to docs/screenshots/ for the README's editor guide."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from cms.models import HomePage
from tailored.core.context import daypart
from tests.e2e.conftest import DESKTOP_CHROME

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
HERO_SECTION = "#block-6d1f6c52-4a4e-4a4f-9b0a-0c3f2b1d7a10-section"
MORNING_HEADING = "Good morning! Your coffee gear is one tap away"
FALLBACK_HERO = "Good things for every day"
# One zone per UTC offset from -11 to +14, none observing daylight saving in most years.
ZONES = (
    "Pacific/Pago_Pago", "Pacific/Honolulu", "Pacific/Gambier", "Pacific/Pitcairn", "America/Phoenix",
    "America/Guatemala", "America/Bogota", "America/La_Paz", "America/Argentina/Buenos_Aires",
    "Atlantic/South_Georgia", "Atlantic/Cape_Verde", "Africa/Abidjan", "Africa/Lagos", "Africa/Johannesburg",
    "Europe/Istanbul", "Asia/Dubai", "Asia/Tashkent", "Asia/Dhaka", "Asia/Bangkok", "Asia/Singapore",
    "Asia/Tokyo", "Australia/Brisbane", "Pacific/Guadalcanal", "Pacific/Tarawa", "Pacific/Tongatapu",
    "Pacific/Kiritimati",
)


def morning_zone() -> str:
    """A time zone where it is the middle of the morning now (08:30 give or take an hour), so
    the journey stays in the morning daypart (05-12) while it runs."""

    def distance(name: str) -> float:
        local = datetime.now(ZoneInfo(name))
        return abs(local.hour + local.minute / 60 - 8.5)

    zone = min(ZONES, key=distance)
    assert daypart(datetime.now(ZoneInfo(zone)).hour) == "morning"
    return zone


def log_in(page: Page, site_url: str) -> None:
    page.goto(site_url + "/admin/login/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("tailored-demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(site_url + "/admin/")


def add_morning_variant(page: Page) -> None:
    """Append a variant to the hero's list (after the electronics and outdoors fans), tag it with
    the segment, and give it a hero of its own."""
    variants = page.locator(HERO_SECTION).locator("[data-streamfield-list-container]").first
    expect(variants.locator(":scope > [data-streamfield-child]")).to_have_count(2)
    variants.locator(":scope > [data-streamfield-list-add]").last.click()
    variant = variants.locator(":scope > [data-streamfield-child]").nth(2)
    variant.get_by_label("Label").fill("Mobile morning visitors")
    variant.get_by_label("Mobile morning visitors", exact=True).check()
    variant.locator(".c-sf-add-button").first.click()
    page.get_by_role("option", name="Hero").click()
    variant.get_by_label(re.compile(r"^Heading")).fill(MORNING_HEADING)
    variant.get_by_label("Subheading").fill("Order before noon, brewing by tomorrow.")
    variant.get_by_label(re.compile(r"^Heading")).scroll_into_view_if_needed()


def preview_as_the_audience(page: Page) -> None:
    page.get_by_role("button", name="Toggle preview").click()
    preview = page.frame_locator("#w-preview-iframe")
    expect(preview.locator(".hero__heading").first).to_be_visible()
    preview.get_by_text("Pick an audience").click()
    preview.get_by_label("Mobile morning visitors").check()
    preview.get_by_label("Device").select_option("mobile")
    preview.get_by_label("Daypart").select_option("morning")
    preview.get_by_role("button", name="Preview as this audience").click()
    expect(preview.locator(".hero__heading").first).to_have_text(MORNING_HEADING)
    expect(preview.locator("[data-tl-preview-choice]").first).to_have_text("Variant: Mobile morning visitors")
    page.screenshot(path=str(SCREENSHOTS / "preview-as-audience.png"))
    page.get_by_role("button", name="Toggle preview").click()


def publish(page: Page) -> None:
    page.get_by_role("button", name="More actions").click()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("has been published")).to_be_visible()


def visitor_sees(browser: Browser, site_url: str, zone: str, mobile: bool) -> str:
    """The hero a new visitor sees once they accept the banner: tracker.js then sets the time-zone
    hint (only with consent, issue 15 item 4), and the next page follows the visitor's clock."""
    if mobile:
        context = browser.new_context(
            user_agent=IPHONE, viewport={"width": 390, "height": 844}, device_scale_factor=2,
            is_mobile=True, has_touch=True, timezone_id=zone,
        )
    else:
        context = browser.new_context(user_agent=DESKTOP_CHROME, timezone_id=zone)
    page = context.new_page()
    page.goto(site_url + "/")
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "unset")
    assert "tl_tz" not in {cookie["name"] for cookie in context.cookies()}
    page.get_by_role("button", name="Accept all").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")
    page.wait_for_function("document.cookie.indexOf('tl_tz=') >= 0")
    page.reload()
    heading = page.locator(".hero__heading").first.inner_text()
    if mobile:
        page.screenshot(path=str(SCREENSHOTS / "mobile-morning-visitor.png"))
    context.close()
    return heading


def test_an_editor_adds_a_mobile_morning_variant_that_only_morning_phones_see(site_url, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    zone = morning_zone()
    home = HomePage.objects.get()
    editor = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1400, "height": 1000})
    page = editor.new_page()
    log_in(page, site_url)
    page.goto(f"{site_url}/admin/pages/{home.pk}/edit/")
    add_morning_variant(page)
    page.screenshot(path=str(SCREENSHOTS / "editor-variant.png"))
    preview_as_the_audience(page)
    publish(page)
    # Back in the editor, the variants are collapsed to one summary line each.
    page.goto(f"{site_url}/admin/pages/{home.pk}/edit/")
    variants = page.locator(HERO_SECTION).locator("[data-streamfield-list-container]").first
    children = variants.locator(":scope > [data-streamfield-child]")
    for index, summary in enumerate(["Electronics fans", "Outdoors fans", "Mobile morning visitors"]):
        expect(children.nth(index).locator(".c-sf-block__title").first).to_have_text(summary)
    page.locator(HERO_SECTION).scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "editor-variant-summaries.png"))
    editor.close()

    assert visitor_sees(browser, site_url, zone, mobile=True) == MORNING_HEADING
    assert visitor_sees(browser, site_url, zone, mobile=False) == FALLBACK_HERO
