"""Wagtail's Site look-up answered from memory across requests (tailored.site_cache, issue 21):
the same pages as Wagtail's own look-up, without its query, with Site edits seen at once in this
process and within SITE_CACHE_SECONDS from another, and the root page's content always fresh."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from wagtail.models import Site

from cms.models import HomePage, LandingPage
from tailored.checks import check_memory_seconds
from tailored.site_cache import MAX_HOSTS, site_cache

pytestmark = pytest.mark.django_db

HOME_TITLE_MARK = "Site cache home"


@pytest.fixture
def pages(settings, memory_store):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PAGE_CACHE_SECONDS": 0}
    home = HomePage.objects.get()
    landing = LandingPage(title="Site cache landing", slug="site-cache-landing", body=[])
    home.add_child(instance=landing)
    landing.save_revision().publish()
    return home, landing


def site_queries(client, path: str = "/", **headers) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **headers)
    assert response.status_code == 200
    # Wagtail's look-up (get_site_for_hostname) ranks the candidate sites as "match"; other Site
    # queries (the site root paths, re-read after a publish) are not the look-up.
    lookups = [q for q in captured.captured_queries if "wagtailcore_site" in q["sql"] and '"match"' in q["sql"]]
    return len(lookups), response.content.decode()


def test_a_host_seen_before_costs_no_site_query_and_its_root_page_is_read_fresh(client, pages):
    home, _ = pages
    assert site_queries(client)[0] == 1  # the first request: Wagtail's own look-up
    assert site_queries(client)[0] == 0
    home.title = HOME_TITLE_MARK
    home.save_revision().publish()
    queries, html = site_queries(client)
    assert queries == 0 and f"<title>{HOME_TITLE_MARK}" in html.replace("\n", "")


def test_a_site_saved_in_this_process_is_seen_at_once(client, pages):
    _, landing = pages
    site_queries(client)
    site = Site.objects.get(is_default_site=True)
    site.root_page = landing
    site.save()
    queries, html = site_queries(client)
    assert queries == 1 and "Site cache landing" in html


def test_a_site_changed_by_another_process_is_seen_within_the_setting(client, pages, settings):
    _, landing = pages
    # Seconds, not a fraction: two requests on a busy machine (make test-under-load) took longer than 0.5.
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SITE_CACHE_SECONDS": 3}
    assert "Site cache landing" not in site_queries(client)[1]
    Site.objects.filter(is_default_site=True).update(root_page=landing)  # no signal, as elsewhere
    assert "Site cache landing" not in site_queries(client)[1]  # still the remembered root
    time.sleep(3.1)
    queries, html = site_queries(client)
    assert queries == 1 and "Site cache landing" in html


def test_zero_turns_it_off(client, pages, settings):
    _, landing = pages
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SITE_CACHE_SECONDS": 0}
    site_queries(client)
    Site.objects.filter(is_default_site=True).update(root_page=landing)
    queries, html = site_queries(client)
    assert queries == 1 and "Site cache landing" in html


def test_hosts_a_client_makes_up_are_kept_at_most_max_hosts(client, pages, settings):
    settings.ALLOWED_HOSTS = ["*"]
    for n in range(MAX_HOSTS * 2 + 5):
        assert client.get("/", HTTP_HOST=f"made-up-{n}.example").status_code == 200  # the default site
        assert len(site_cache._found) <= MAX_HOSTS


def test_only_wagtail_pages_look_a_site_up_so_the_events_endpoint_never_needs_the_database(client, pages, monkeypatch):
    from django.db import OperationalError

    asked: list[str] = []

    def unavailable(request):
        asked.append(request.path)
        raise OperationalError("the database is away")

    monkeypatch.setattr(Site, "find_for_request", staticmethod(unavailable))
    response = client.post("/api/events", '{"events": []}', content_type="application/json")
    assert response.status_code != 500 and asked == []
    with pytest.raises(OperationalError):
        client.get("/")  # a page needs its Site: asked of Wagtail, once, by the cache
    assert asked == ["/"]


@pytest.mark.parametrize("value", ["5", -1, None, True])
def test_a_setting_that_is_not_seconds_is_e012(settings, value):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SITE_CACHE_SECONDS": value}
    assert [error.id for error in check_memory_seconds(None)] == ["tailored.E012"]


def test_the_default_and_zero_pass_the_check(settings):
    assert check_memory_seconds(None) == []
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SITE_CACHE_SECONDS": 0}
    assert check_memory_seconds(None) == []
