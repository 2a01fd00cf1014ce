"""A recommendation block's impression in the browser (issue 17 items 5 and 7): scrolled into view
for a second, it counts one impression whose variant is what chose its list (`model:<version>`, or
`popular` without a usable model) for that block's id; a click inside it counts a click. The
worker counts both into the Insights rows under that version."""

from __future__ import annotations

import re

from django.core.cache import cache
from django.db.models import Sum

from cms.models import HomePage
from tailored import conf, worker
from tailored.insights import counting
from tailored.models import InsightHour
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_impressions_journey import INIT, VIEWPORT, send_now, sent_events
from tests.e2e.test_tracking_journey import open_with_consent

BLOCK = "5b0c7a52-7d3e-4c61-9a4f-2f6f0c2b9e11"
RECOMMENDED = f'[data-tl-block-id="{BLOCK}"]'


def recommend_on_top_of_the_homepage() -> HomePage:
    """The demo shows its recommendation block to returning visitors only: this one, first on
    the homepage, is shown to everyone (and is out of view once the page scrolls to its end)."""
    cache.clear()  # products listed for an earlier journey's demo (loaded again, new ids) are cached
    home = HomePage.objects.live().first()
    raw = list(home.body.raw_data)
    raw.insert(0, {"type": "recommendations", "id": BLOCK,
                   "value": {"heading": "Picked for you", "strategy": "recommended", "count": 4, "ask_feedback": False}})
    home.body = raw
    home.save_revision().publish()
    return home


def counted_rows() -> list[tuple[str, int, int]]:
    """The worker drains the stream and flushes: the block's Insights rows for every visitor,
    (variant, impressions, clicks)."""
    client = conf.get_profile_store().client
    worker.ensure_group(client)
    while worker.process_once(client, worker.Consumer(name="e2e", batch=50, block_ms=0)):
        pass
    counting.flush(client)
    rows = InsightHour.objects.filter(block=BLOCK, segment="").values("variant").order_by()
    return list(rows.annotate(i=Sum("impressions"), c=Sum("clicks")).values_list("variant", "i", "c"))


def test_a_recommendation_block_seen_for_a_second_counts_one_impression_of_its_version(site_url, browser):
    home = recommend_on_top_of_the_homepage()
    context = browser.new_context(user_agent=DESKTOP_CHROME, viewport=VIEWPORT)
    context.add_init_script(INIT)
    page = open_with_consent(context, site_url + "/")
    events = sent_events(page)
    served_by = page.locator(RECOMMENDED).get_attribute("data-tl-variant")
    assert re.fullmatch(r"model:\S+|popular", served_by), served_by
    assert page.evaluate("scrollY") > 0  # scrolled to the end: the block is out of view

    page.evaluate(f"document.querySelector('{RECOMMENDED}').scrollIntoView()")
    page.wait_for_timeout(1500)
    page.evaluate("scrollTo(0, 1e6)")
    page.wait_for_timeout(200)
    sent = page.evaluate("tailored.stats().sent")
    send_now(page, events, sent)
    impressions = [e for e in events if e["type"] == "impression" and e.get("block") == BLOCK]
    assert len(impressions) == 1, impressions
    assert (impressions[0]["variant"], impressions[0]["page"]) == (served_by, home.pk)
    assert impressions[0]["seconds"] >= 1

    page.evaluate(f"document.querySelector('{RECOMMENDED}').scrollIntoView()")
    page.locator(f"{RECOMMENDED} a").first.click()
    send_now(page, events, sent + 1)
    clicks = [e for e in events if e["type"] == "click" and e.get("block") == BLOCK]
    assert [(c["variant"], c["page"]) for c in clicks] == [(served_by, home.pk)]
    context.close()

    assert counted_rows() == [(served_by, 1, 1)]
