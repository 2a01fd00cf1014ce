"""Admin screens at 1280 px (issue 16 items 5 and 7): Settings → Visitors and the Personalization
lift report read without horizontal scrolling, and their screenshots go into docs/screenshots/."""

from __future__ import annotations

import time

from playwright.sync_api import Browser, Page, expect

from tailored import conf
from tailored.core.types import Event
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_editor_journey import SCREENSHOTS, log_in

VISITOR = "5e" * 16


def fits_its_column(page: Page, selector: str) -> tuple[float, float]:
    """(right edge of the widest cell or button, right edge of the content column)."""
    element = page.locator(selector).first
    column = page.evaluate("() => { const m = document.querySelector('main'); const s = getComputedStyle(m); return m.getBoundingClientRect().right - parseFloat(s.paddingRight); }")
    right = element.evaluate("e => Math.max(e.getBoundingClientRect().right, ...[...e.querySelectorAll('th, td, button, a, input')].map(c => c.getBoundingClientRect().right))")
    return right, column


def browse_as_a_visitor() -> None:
    now = time.time()
    events = [Event(f"v{i}", "page_view", ts=now - i, category="electronics", item=str(i + 1), url=f"/electronics/{i}/", attrs={"page_type": "product"}) for i in range(4)]
    conf.get_profile_store().record(VISITOR, events, now)


def test_visitor_lookup_and_lift_report_read_at_1280_px(site_url, browser: Browser):
    browse_as_a_visitor()
    context = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, site_url)

    page.goto(f"{site_url}/admin/")
    page.get_by_role("button", name="Settings").click()
    page.get_by_role("link", name="Visitors").click()
    page.get_by_label("Visitor id or user").fill(VISITOR)
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("[data-tl-page-views]")).to_have_text("4")
    expect(page.locator("[data-tl-segments]")).to_contain_text("Electronics fans")
    right, column = fits_its_column(page, "[data-tl-visitor]")
    assert right <= column + 1, (right, column)
    page.screenshot(path=str(SCREENSHOTS / "visitor-lookup.png"), full_page=True)

    page.goto(f"{site_url}/admin/personalization-lift/")
    expect(page.locator("[data-tl-holdout-off]")).to_be_visible()
    right, column = fits_its_column(page, "[data-tl-lift]")
    assert right <= column + 1, (right, column)
    assert page.get_by_text("100.0%").count() == 0  # nothing counted: no intervals that look like data
    page.screenshot(path=str(SCREENSHOTS / "lift-report.png"), full_page=True)
    context.close()
