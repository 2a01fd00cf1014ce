"""A search query cut to the 200-character limit inside an emoji (issue 14 item 3): tracker.js cuts by
code point, so the whole emoji reaches the profile. Cut by UTF-16 unit, the event carried half an
emoji: a 500 before the server replaced unpaired surrogates, then a U+FFFD."""

from __future__ import annotations

from tests.e2e.test_tracking_journey import open_with_consent, wait_for_profile

CAMPING = "\U0001f3d5"  # two UTF-16 units
QUERY = "x" * 199 + CAMPING + CAMPING  # 201 code points: the 200th is the first emoji


def test_a_query_is_cut_between_emoji_not_inside_one(site_url, browser):
    context = browser.new_context()
    page = open_with_consent(context, site_url + "/")

    # Set by script: the demo's input has maxlength="200", which a site's own search box may not.
    page.get_by_role("searchbox", name="Search products").evaluate("(box, query) => { box.value = query }", QUERY)
    page.get_by_role("button", name="Search").click()
    profile = wait_for_profile(page, site_url, lambda p: p.get("recent_searches"))

    assert profile["recent_searches"][0] == "x" * 199 + CAMPING
    context.close()
