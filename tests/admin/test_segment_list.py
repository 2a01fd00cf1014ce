"""The segment list at a glance (issue 16 item 3): each segment's size now (the edit view's live
count), its 7-day trend from the daily sizes, and "used on N pages" linking to those pages, for
a constant number of queries and Redis round trips however many segments the page lists."""

from __future__ import annotations

import time

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail.fields import StreamField
from wagtail.models import Page

from cms.models import HomePage
from tailored import conf
from tailored.core.types import Event, Snapshot
from tailored.models import Segment
from tailored.redis_guard import RedisGuard

pytestmark = pytest.mark.django_db

MOBILE_RULE = {"field": "context.device", "op": "eq", "value": "mobile"}


def url(name: str, *args) -> str:
    return reverse(Segment.snippet_viewset.get_url_name(name), args=args)


def soup(response) -> BeautifulSoup:
    assert response.status_code == 200
    return BeautifulSoup(response.content, "html.parser")


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.get(username="editor"))
    return client


@pytest.fixture
def long_refresh(settings):
    # The segment cache re-checks the database every few seconds; a re-check between two measured
    # requests would count a query that is not the list's.
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SEGMENT_REFRESH_SECONDS": 3600}


def visit(visitor_id: str, device: str, segments: frozenset[str] = frozenset(), at: float | None = None) -> None:
    """A consenting visitor's page view, as a request records it: with its device and the
    segments the visitor matched (what the daily sizes count)."""
    at = time.time() if at is None else at
    event = Event(f"{visitor_id[:6]}-{int(at)}", "page_view", ts=at, category="electronics", item="1", attrs={"page_type": "product"})
    conf.get_profile_store().record(visitor_id, [event], at, Snapshot(device=device, segments=segments))


def rows_by_slug(page: BeautifulSoup) -> dict[str, dict[str, BeautifulSoup]]:
    table = page.select_one("table.listing")
    headings = [th.get_text(" ", strip=True) for th in table.select("thead th")]
    rows = {}
    for tr in table.select("tbody tr"):
        cells = dict(zip(headings, tr.select("td"), strict=True))
        rows[cells["Slug"].get_text(strip=True)] = cells
    return rows


def live_count_on_edit_page(client, segment: Segment) -> int:
    text = soup(client.get(url("edit", segment.pk))).select_one("[data-live-count]").get_text(strip=True)
    return int(text.split()[0])


def pages_naming(slug: str) -> set[int]:
    """The literal definition, walked independently of the reference index: the pages with a
    StreamField holding a personalized block whose variants name `slug`."""
    found = set()
    for page in Page.objects.all().specific():
        for field in page._meta.get_fields():
            if isinstance(field, StreamField) and _names(getattr(page, field.name).get_prep_value(), slug):
                found.add(page.pk)
    return found


def _names(data, slug: str) -> bool:
    if isinstance(data, dict):
        variants = data.get("variants") if data.get("fallback") is not None else None
        if isinstance(variants, list) and any(slug in ((v.get("value") or v).get("segments") or ()) for v in variants):
            return True
        return any(_names(value, slug) for value in data.values())
    if isinstance(data, list):
        return any(_names(item, slug) for item in data)
    return False


# The columns ----------------------------------------------------------------------------------


def test_the_list_has_size_trend_and_usage_columns(admin_client, memory_store):
    table = soup(admin_client.get(url("list"))).select_one("table.listing")
    headings = [th.get_text(" ", strip=True) for th in table.select("thead th")]
    assert headings[1:6] == ["Name", "Slug", "Size now", "Last 7 days", "Used on"]


def test_size_now_is_the_edit_views_live_count(admin_client, memory_store):
    visit("a" * 32, "mobile")
    visit("b" * 32, "mobile")
    visit("c" * 32, "desktop")
    Segment.objects.create(name="On a phone", slug="on-a-phone", rule=MOBILE_RULE)
    rows = rows_by_slug(soup(admin_client.get(url("list"))))
    assert rows["on-a-phone"]["Size now"].get_text(strip=True) == "2"
    assert "of 3 active" in rows["on-a-phone"]["Size now"].select_one("[title]")["title"]
    for segment in Segment.objects.all():
        shown = int(rows[segment.slug]["Size now"].get_text(strip=True))
        assert shown == live_count_on_edit_page(admin_client, segment), segment.slug


def test_the_trend_shows_the_last_seven_days_of_daily_sizes(admin_client, memory_store):
    Segment.objects.create(name="On a phone", slug="on-a-phone", rule=MOBILE_RULE)
    now = time.time()
    visit("a" * 32, "mobile", frozenset({"on-a-phone"}), at=now - 6 * 86400)
    visit("a" * 32, "mobile", frozenset({"on-a-phone"}), at=now)
    visit("b" * 32, "mobile", frozenset({"on-a-phone"}), at=now)
    visit("c" * 32, "mobile", frozenset({"on-a-phone"}), at=now - 8 * 86400)  # before the 7 days
    cell = rows_by_slug(soup(admin_client.get(url("list"))))["on-a-phone"]["Last 7 days"]
    bars = cell.select("svg rect")
    assert len(bars) == 7
    assert cell.select_one("svg")["aria-label"].endswith(": 1, 0, 0, 0, 0, 0, 2")
    assert cell.select_one("[data-trend-range]").get_text(strip=True) == "1 → 2 a day"
    assert float(bars[-1]["height"]) > float(bars[0]["height"]) > float(bars[1]["height"])


def test_used_on_counts_the_pages_whose_variants_name_the_segment_and_links_to_them(admin_client, memory_store):
    rows = rows_by_slug(soup(admin_client.get(url("list"))))
    used = 0
    for segment in Segment.objects.all():
        cell = rows[segment.slug]["Used on"]
        pages = pages_naming(segment.slug)
        if not pages:
            assert cell.get_text(strip=True) == "Not used on any page" and cell.select_one("a") is None
            continue
        used += 1
        link = cell.select_one("a")
        assert link.get_text(strip=True) == f"Used on {len(pages)} page{'s' if len(pages) > 1 else ''}", segment.slug
        assert link["href"] == url("usage", segment.pk)
        usage = soup(admin_client.get(link["href"]))
        edit_links = {a["href"] for a in usage.select("main a[href]")}
        assert {reverse("wagtailadmin_pages:edit", args=[pk]) for pk in pages} <= edit_links, segment.slug
    assert used >= 2  # the demo targets segments on the homepage and the landing pages


def test_a_page_newly_targeting_a_segment_is_counted_once(admin_client, memory_store):
    phone = Segment.objects.create(name="On a phone", slug="on-a-phone", rule=MOBILE_RULE)
    cell = rows_by_slug(soup(admin_client.get(url("list"))))["on-a-phone"]["Used on"]
    assert cell.get_text(strip=True) == "Not used on any page"
    home = HomePage.objects.get()
    raw = home.body.raw_data
    personalized = next(block for block in raw if block["type"] == "personalized")
    for variant in personalized["value"]["variants"][:2]:  # two variants of one page name it
        variant["value"]["segments"] = [*variant["value"]["segments"], phone.slug]
    home.body = raw
    home.save_revision().publish()
    assert pages_naming(phone.slug) == {home.pk}
    cell = rows_by_slug(soup(admin_client.get(url("list"))))["on-a-phone"]["Used on"]
    assert cell.get_text(strip=True) == "Used on 1 page"


def test_the_list_works_while_the_profile_store_is_down(admin_client, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "REDIS_SOCKET_TIMEOUT_SECONDS": 0.2,
    }
    rows = rows_by_slug(soup(admin_client.get(url("list"))))
    fans = rows["electronics-fans"]
    assert fans["Size now"].get_text(strip=True) == "unavailable"
    assert fans["Last 7 days"].get_text(strip=True) == "unavailable"
    assert fans["Used on"].get_text(strip=True).startswith("Used on")


# Constant cost --------------------------------------------------------------------------------


def make_segments(count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        Segment.objects.create(name=f"Phones {i}", slug=f"phones-{i}", rule={"all": [MOBILE_RULE, {"count": {"event": "page_view", "category": f"c{i}", "within_hours": 24}, "op": "gte", "value": 1}]})


def list_cost(client) -> tuple[int, BeautifulSoup]:
    with CaptureQueriesContext(connection) as captured:
        page = soup(client.get(url("list")))
    return len(captured), page


def test_the_list_costs_the_same_queries_for_two_segments_or_twelve(admin_client, memory_store, long_refresh):
    Segment.objects.all().delete()
    make_segments(2)
    visit("a" * 32, "mobile", frozenset({"phones-0"}))
    list_cost(admin_client)  # warm: content types, the user's permissions
    two, page = list_cost(admin_client)
    assert len(rows_by_slug(page)) == 2
    make_segments(10, start=2)
    twelve, page = list_cost(admin_client)
    assert len(rows_by_slug(page)) == 12
    assert twelve == two


@pytest.fixture
def round_trips(monkeypatch):
    """Every Redis command or pipeline the site sends passes the one guard (tailored.redis_guard):
    counting its calls counts round trips, against the real Redis."""
    calls = []
    original = RedisGuard.call

    def counted(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(RedisGuard, "call", counted)
    return calls


def test_the_list_costs_the_same_redis_round_trips_for_two_segments_or_twelve(admin_client, use_redis_store, long_refresh, round_trips):
    Segment.objects.all().delete()
    make_segments(2)
    for i in range(3):
        visit(f"{i:032x}", "mobile", frozenset({"phones-0", "phones-1"}))
    admin_client.get(url("list"))  # warm: the store's scripts are loaded once per process
    round_trips.clear()
    page = soup(admin_client.get(url("list")))
    two = len(round_trips)
    assert rows_by_slug(page)["phones-0"]["Size now"].get_text(strip=True) == "0"  # no category views
    assert rows_by_slug(page)["phones-0"]["Last 7 days"].select_one("svg")["aria-label"].endswith(", 3")
    make_segments(10, start=2)
    round_trips.clear()
    page = soup(admin_client.get(url("list")))
    assert len(rows_by_slug(page)) == 12
    assert len(round_trips) == two
    assert two <= 3  # recent visitors, their profiles (one batch), every segment's sizes
