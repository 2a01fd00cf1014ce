"""Issue 18 in the browser: an editor builds "visited the home page at least twice in 24 hours"
by picking the page in Wagtail's page chooser, AND "arrived with ?promo=spring this visit"; a
visitor consents, lands with ?promo=spring and clicks through: the page views carry the page's id
and the remembered parameter (tracker.js), and the editor's live count shows that visitor."""

from __future__ import annotations

import json

from playwright.sync_api import expect
from wagtail.models import Site

from tailored.models import Segment
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_segment_builder_journey import live_count, log_in, row, segment_url


def test_an_editor_picks_a_page_in_the_chooser_and_a_visitor_joins(site_url, browser):
    home = Site.objects.get(is_default_site=True).root_page
    editor = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 1000})
    page = editor.new_page()
    log_in(page, site_url)
    page.goto(site_url + segment_url("add"))
    page.locator("#id_name").fill("Spring home regulars")

    first = row(page, 1)
    first.get_by_role("combobox", name="Condition type").select_option("page_visits")
    first.get_by_role("button", name="Choose a page").click()
    modal = page.locator(".modal")
    modal.get_by_role("link", name=home.title, exact=True).first.click()
    expect(first.get_by_role("textbox", name="Page")).to_have_value(str(home.pk))
    expect(first.locator("[data-chosen-page]")).to_have_text(home.title)
    first.get_by_role("combobox", name="Comparison").select_option("gte")
    first.get_by_role("textbox", name="Value").fill("2")

    page.get_by_role("button", name="Add condition").click()
    second = row(page, 2)
    second.get_by_role("combobox", name="Condition type").select_option("query")
    second.get_by_role("textbox", name="Parameter").fill("promo")
    second.get_by_role("combobox", name="Seen").select_option("visit")
    second.get_by_role("combobox", name="Comparison").select_option("eq")
    second.get_by_role("textbox", name="Value").fill("spring")
    expect(live_count(page)).to_have_text("0 visitors match now")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Spring home regulars")
    segment = Segment.objects.get(name="Spring home regulars")
    assert segment.rule == {"all": [
        {"count": {"event": "page_view", "page": home.pk, "within_hours": 24}, "op": "gte", "value": 2},
        {"field": "visit.query.promo", "op": "eq", "value": "spring"},
    ]}

    visitor = browser.new_context(user_agent=DESKTOP_CHROME).new_page()
    visitor.goto(site_url + "/?promo=spring&email=ann%40example.com")
    visitor.get_by_role("button", name="Accept").click()
    with visitor.expect_request(lambda r: r.url.endswith("/api/events") and r.method == "POST") as sent:
        visitor.goto(site_url + "/")  # the home page again, from the home page: same visit
    views = [e for e in json.loads(sent.value.post_data)["events"] if e["type"] == "page_view"]
    assert views[-1]["pages"] == str(home.pk)
    page.goto(site_url + segment_url("edit", segment.pk))
    expect(live_count(page)).to_have_text("1 visitor matches now")
    editor.close()
