"""Segments at a glance, in a browser at 1280 px (issue 16 item 3): the list shows each
segment's size now, its last 7 days and the pages that use it, every column visible; the edit
view's chart has its axes labelled; the builder offers the regions and countries for a region or
country condition and warns, without blocking the save, about a value no visitor has had."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tailored import conf
from tailored.core.segments import matching_segments
from tailored.core.types import Context, Event, Snapshot
from tailored.models import Segment
from tailored.segments import segment_cache
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_segment_builder_journey import log_in, row, segment_url

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
DAY = 86400


def browse(days_ago: int, visitors: int) -> None:
    """`visitors` consenting visitors in Britain on a phone, each viewing three electronics
    products that day and then the homepage. The homepage request records the segments the
    visitor matched then, as a real request does: that is what the daily sizes count."""
    at = time.time() - days_ago * DAY
    store = conf.get_profile_store()
    segments, windows = segment_cache.current()
    context = Context(device="mobile", country="GB", daypart="morning")
    for n in range(visitors):
        visitor = f"{days_ago:02d}{n:030x}"
        views = [
            Event(f"e-{days_ago}-{n}-{i}", "page_view", ts=at - 60 + i, category="electronics", item=str(5 + i), attrs={"page_type": "product"})
            for i in range(3)
        ]
        store.record(visitor, views, at - 57, Snapshot(device="mobile", country="GB"))
        matched = matching_segments(segments.definitions, store.get(visitor, at, windows), context, at)
        home = Event(f"e-{days_ago}-{n}-home", "page_view", ts=at, attrs={"page_type": "home"})
        store.record(visitor, [home], at, Snapshot(device="mobile", country="GB", segments=matched))


def right_edge_of_content(page: Page) -> float:
    return page.locator("table.listing").evaluate(
        "t => { const p = t.parentElement, s = getComputedStyle(p); return p.getBoundingClientRect().right - parseFloat(s.paddingRight); }"
    )


def test_an_editor_sees_segments_at_a_glance_and_is_warned_about_an_unknown_country(site_url, browser: Browser):
    for days_ago, visitors in ((6, 2), (4, 3), (2, 5), (0, 6)):
        browse(days_ago, visitors)
    context = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    log_in(page, site_url)

    # 1. The list: size now, the last 7 days and where each segment is used, all on screen.
    page.goto(site_url + segment_url("list"))
    mobile = page.locator("table.listing tbody tr", has_text="mobile-visitors").first
    expect(mobile.locator("[data-segment-size]")).to_have_text("6")  # today's visitors on a phone
    expect(mobile.locator("[data-trend-range]")).to_have_text("2 → 6 a day")
    fans = page.locator("table.listing tbody tr", has_text="electronics-fans").first
    expect(fans.locator("[data-segment-size]")).to_have_text("6")
    usage = fans.get_by_role("link", name="Used on 2 pages")
    right = page.locator("table.listing").evaluate("t => Math.max(...[...t.querySelectorAll('th, td')].map(e => e.getBoundingClientRect().right))")
    assert right <= right_edge_of_content(page) + 1
    page.screenshot(path=str(SCREENSHOTS / "segment-list.png"), full_page=True)
    usage.click()
    expect(page.get_by_role("link", name="Tailored shop")).to_be_visible()

    # 2. The edit view: the chart's axes say what they measure.
    page.goto(site_url + segment_url("edit", Segment.objects.get(slug="mobile-visitors").pk))
    chart = page.locator("[data-size-chart]")
    expect(chart.locator("[data-x-title]")).to_have_text("Date (UTC)")
    expect(chart.locator("[data-y-title]")).to_have_text("Visitors")
    expect(chart.locator("figcaption")).to_contain_text("the live count's rule and visitors")
    chart.scroll_into_view_if_needed()
    page.locator("[data-segment-insights]").screenshot(path=str(SCREENSHOTS / "segment-size-chart.png"))

    # 3. A country condition offers the ISO countries; a lower-case code is a warning, not an error.
    page.get_by_role("button", name="Add condition").click()
    second = row(page, 2)
    second.get_by_role("combobox", name="Condition type").select_option("field")
    second.get_by_role("combobox", name="Fact").select_option("context.region")
    # The 5,000 ISO regions are not sent with the page: the builder fetches them for this row.
    expect(page.locator("#id_rule-list-region option[value='GB-ENG']")).to_have_count(1)
    expect(second.locator("[data-input=value]")).to_have_attribute("list", "id_rule-list-region")
    second.get_by_role("combobox", name="Fact").select_option("context.country")
    second.get_by_role("combobox", name="Comparison").select_option("eq")
    country = second.locator("[data-input=value]")  # a combobox: its datalist offers the countries
    expect(country).to_have_attribute("list", "id_rule-list-country")
    assert page.locator("#id_rule-list-country option[value=GB]").count() == 1
    country.fill("gb")
    expect(second.locator("[data-row-warning]")).to_have_text("No visitor has “gb”: codes are upper case, “GB”.")
    expect(second.locator("[data-row-error]")).to_be_empty()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Mobile visitors: No visitor has “gb”")
    rule = Segment.objects.get(slug="mobile-visitors").rule
    assert rule["all"][1] == {"field": "context.country", "op": "eq", "value": "gb"}  # saved all the same
    context.close()
