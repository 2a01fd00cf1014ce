"""Preview and explain for people (issue 16 items 4 and 6), in the browser:

* the page preview opens at Wagtail's mobile size and the audience picker says "mobile, from the
  preview's width"; switching the pane to tablet re-renders for a tablet (one reload); a device
  the editor picks wins over the pane's width;
* ?explain=1 shows an editor each segment's rule as a sentence and each block's variant and why;
* a recommendation's thumbs show a thank-you state after a vote.

Screenshots at 1280 px go to docs/screenshots/ (preview-audience.png, explain-panel.png) for the
README's editor's guide."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.cache import cache
from playwright.sync_api import Browser, Page, expect

from cms.models import HomePage, LandingPage
from tailored.services import user_visitor_id
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_editor_journey import log_in
from tests.helpers import make_fan

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
WIDE = {"width": 1280, "height": 900}


def open_preview(page: Page, site_url: str):
    home = HomePage.objects.get()
    page.goto(f"{site_url}/admin/pages/{home.pk}/edit/")
    page.get_by_role("button", name="Toggle preview").click()
    return page.frame_locator("#w-preview-iframe")


def pane_size(page: Page, label: str) -> None:
    """Click one of Wagtail's preview size buttons ("Preview in tablet size")."""
    page.locator(f'label.w-preview__size-button:has(input[aria-label="{label}"])').click()


def test_the_preview_names_the_device_from_the_panes_width(site_url, browser: Browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    editor = browser.new_context(user_agent=DESKTOP_CHROME, viewport=WIDE)
    page = editor.new_page()
    log_in(page, site_url)
    preview = open_preview(page, site_url)
    summary = preview.locator("[data-tl-audience-summary]")
    # Wagtail opens the pane at its mobile size (375 px): a desktop editor previews a phone.
    expect(summary).to_have_text("yourself (your own cookies) · mobile, from the preview's width")
    assert preview.locator("body").evaluate("() => innerWidth") < 600
    expect(preview.get_by_text("Get the app").first).to_be_visible()

    # An audience that names no device takes the pane's; the picker says why New visitors applies.
    preview.get_by_text("Pick an audience").click()
    preview.get_by_label("Electronics fans").check()
    preview.get_by_role("button", name="Preview as this audience").click()
    expect(summary).to_have_text("Electronics fans · mobile, from the preview's width")
    derived = preview.locator("[data-tl-audience-derived]")
    expect(derived).to_contain_text("Mobile visitors")
    expect(derived).to_contain_text("New visitors")
    expect(derived).to_contain_text("for this context")
    preview.get_by_text("Pick an audience").click()
    expect(preview.get_by_label("Device")).to_have_value("")  # "From the preview's width"
    page.screenshot(path=str(SCREENSHOTS / "preview-audience.png"))

    # The pane at tablet size: the preview is rendered again, once, for a tablet.
    pane_size(page, "Preview in tablet size")
    expect(summary).to_have_text("Electronics fans · tablet, from the preview's width")
    expect(preview.get_by_text("Get the app")).to_have_count(0)

    # A device the editor picks wins, whatever the pane's width.
    preview.get_by_text("Pick an audience").click()
    preview.get_by_label("Device").select_option("desktop")
    preview.get_by_role("button", name="Preview as this audience").click()
    expect(summary).to_have_text("Electronics fans · desktop, picked")
    pane_size(page, "Preview in mobile size")
    page.wait_for_timeout(1500)  # time for a (wrong) reload the resize must not cause
    expect(summary).to_have_text("Electronics fans · desktop, picked")
    editor.close()


def test_the_explain_panel_reads_as_sentences_and_names_each_blocks_variant(site_url, browser: Browser):
    editor = browser.new_context(user_agent=DESKTOP_CHROME, viewport=WIDE)
    page = editor.new_page()
    log_in(page, site_url)
    page.goto(site_url + "/")
    page.get_by_role("button", name="Accept all").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")
    make_fan(user_visitor_id(get_user_model().objects.get(username="editor").pk), views=3)
    page.goto(site_url + "/?explain=1")
    panel = page.locator("aside.tl-explain")
    fans = panel.locator('[data-tl-explain-segment="electronics-fans"]')
    expect(fans).to_have_attribute("data-matched", "true")
    expect(fans.locator("[data-tl-explain-sentence]")).to_have_text(
        "Visitors who viewed electronics products at least 3 times in the last 24 hours."
    )
    expect(fans).to_contain_text("(saw: 3 times)")
    first_block = panel.locator('[data-tl-explain-block="1"]')
    expect(first_block).to_contain_text("shows variant “Electronics fans”: it matched Electronics fans")
    expect(panel.locator("[data-tl-explain-block]").filter(has_text="no variant matched").first).to_be_visible()
    # Fits the 1280 px window: nothing scrolls sideways.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= WIDE["width"]
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(SCREENSHOTS / "explain-panel.png"))
    editor.close()


def test_a_thumbs_vote_shows_a_thank_you_state(site_url, browser: Browser):
    cache.clear()  # products recommended to an earlier journey's demo (loaded again, new ids) are cached
    section = {"type": "recommendations", "value": {"heading": "Picked for you", "strategy": "recommended", "count": 3, "ask_feedback": True}}
    HomePage.objects.get().add_child(instance=LandingPage(title="Picks", slug="picks", body=[section]))
    visitor = browser.new_context(user_agent=DESKTOP_CHROME, viewport=WIDE)
    page = visitor.new_page()
    page.goto(site_url + "/picks/")
    page.get_by_role("button", name="Accept all").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")
    card = page.locator(".carousel--recommendations .product-card").first
    up, down = card.locator('[data-tl-feedback="up"]'), card.locator('[data-tl-feedback="down"]')
    expect(up).to_have_attribute("aria-pressed", "false")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(down).to_have_attribute("aria-pressed", "false")
    thanks = "(el) => getComputedStyle(el, '::after').content"
    assert up.evaluate(thanks) == '" Thanks"' and down.evaluate(thanks) == "none"
    page.wait_for_timeout(500)  # the tracker counts one click per element per 400 ms
    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    # The other cards are untouched.
    expect(page.locator('.product-card [aria-pressed="true"]')).to_have_count(1)
    visitor.close()
