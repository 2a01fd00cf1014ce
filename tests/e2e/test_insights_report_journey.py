"""Reports -> Personalization insights at 1280 px (issue 17 item 3): the demo's insights (with the
seeded alert) read without horizontal scrolling, the filters work from the menu, and the
screenshot goes into docs/screenshots/insights-report.png."""

from __future__ import annotations

import io
import re

from playwright.sync_api import Browser, expect

from cms.models import HomePage
from tailored.insights.demo import load_demo_insights
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_admin_screens_journey import fits_its_column
from tests.e2e.test_editor_journey import SCREENSHOTS, log_in
from tests.helpers import HOME_BLOCK


def test_the_insights_report_reads_at_1280_px(site_url, browser: Browser):
    load_demo_insights(HomePage.objects.live().first().pk, seed=7, say=io.StringIO().write)
    context = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, site_url)

    page.goto(f"{site_url}/admin/")
    expect(page.locator("[data-tl-alerts-panel]")).to_contain_text("CTR")
    page.get_by_role("button", name="Reports").click()
    page.get_by_role("link", name="Personalization insights", exact=True).click()
    hero = page.locator(f'[data-tl-block="{HOME_BLOCK}"]')
    expect(hero).to_contain_text("Electronics fans")
    expect(page.locator("[data-tl-alert=ctr]").first).to_contain_text("dropped")
    right, column = fits_its_column(page, f'[data-tl-block="{HOME_BLOCK}"] table')
    assert right <= column + 1, (right, column)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.evaluate("document.querySelector('[data-tl-variants]').scrollIntoView()")
    page.screenshot(path=str(SCREENSHOTS / "insights-report.png"), full_page=False)

    page.get_by_label("Device").select_option("mobile")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"device=mobile"))
    expect(hero.locator("[data-tl-impressions]").first).to_be_visible()
    context.close()
