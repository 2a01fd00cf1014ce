"""A landing page's variant follows the visitor's country (the trusted CDN header) in a real browser."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from cms.models import LandingPage
from tailored.core.context import daypart
from tests.e2e.conftest import DESKTOP_CHROME


def test_the_landing_page_changes_with_the_country_header(site_url, browser):
    page_url = site_url + LandingPage.objects.get(slug="good-morning").url
    seen = {}
    for country in ("US", "FR", "GB"):
        context = browser.new_context(user_agent=DESKTOP_CHROME, extra_http_headers={"CF-IPCountry": country})
        page = context.new_page()
        page.goto(page_url)
        seen[country] = page.locator("main").inner_text()
        context.close()
    assert "Hello from across the pond" in seen["US"]
    assert "Hello from across the pond" not in seen["FR"]
    assert "Good things, whatever the time" in seen["FR"]
    # GB is one time zone: the greeting follows London's clock (morning greeting, evening offer).
    london = daypart(datetime.now(ZoneInfo("Europe/London")).hour)
    expected = {"morning": "Good morning, Britain!", "evening": "Evening, Britain.", "night": "Evening, Britain."}
    assert expected.get(london, "Good things, whatever the time") in seen["GB"]
