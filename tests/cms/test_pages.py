"""The page types and the demo content built from them: landing pages follow place and time,
articles are tracked as content, and the homepage has its personalized sections."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from wagtail.images import get_image_model
from wagtail.models import Revision

from cms.models import ArticleIndexPage, ArticlePage, HomePage, LandingPage, ProductPage
from tailored.core.context import daypart
from tests.helpers import ssr_variants

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def test_the_demo_has_sections_landing_pages_articles_and_images():
    home = HomePage.objects.get()
    sections = [block for block in home.body if block.block_type == "personalized"]
    assert len(sections) >= 6
    assert sections[0].id == "6d1f6c52-4a4e-4a4f-9b0a-0c3f2b1d7a10"
    assert LandingPage.objects.child_of(home).live().count() == 3
    assert ArticlePage.objects.live().count() >= 3
    assert get_image_model().objects.filter(title__startswith="Demo: ").count() >= 6
    assert not ProductPage.objects.filter(image__isnull=True).exists()


def test_articles_are_tracked_as_content_pages(client):
    article = ArticlePage.objects.live().filter(category__isnull=False).first()
    html = client.get(article.url).content.decode()
    assert 'data-tl-page-type="article"' in html
    assert f'data-tl-category="{article.category.slug}"' in html
    index = ArticleIndexPage.objects.get()
    assert article.title in client.get(index.url).content.decode()


def test_the_morning_landing_page_follows_the_country_and_the_local_time(client):
    page = LandingPage.objects.get(slug="good-morning")
    assert "Hello from across the pond" in client.get(page.url, HTTP_CF_IPCOUNTRY="US").content.decode()
    # GB is one time zone: the greeting follows London's clock.
    london = daypart(datetime.now(ZoneInfo("Europe/London")).hour)
    expected = {"morning": "Good morning, Britain!", "evening": "Evening, Britain.", "night": "Evening, Britain."}
    html = client.get(page.url, HTTP_CF_IPCOUNTRY="GB").content.decode()
    assert expected.get(london, "Good things, whatever the time") in html
    assert "Good things, whatever the time" in client.get(page.url, HTTP_CF_IPCOUNTRY="FR").content.decode()


def test_the_spring_sale_greets_its_campaign(client):
    page = LandingPage.objects.get(slug="spring-sale")
    html = client.get(page.url + "?utm_campaign=Spring%20Sale").content.decode()
    assert "Thanks for reading: 20% off the spring sale" in html and "SPRING20" in html
    assert "Summer is here" not in html  # scheduled for 2030


def test_the_homepage_sections_render_for_a_new_visitor(client):
    html = client.get("/").content.decode()
    assert len(ssr_variants(html)) >= 6
    assert "Trending this week" in html and "FIRSTFREE" in html


def test_an_older_homepage_gets_the_demo_sections_it_never_had():
    home = HomePage.objects.get()
    original = list(home.body.raw_data)
    home.body = original[:3]
    home.save()
    Revision.page_revisions.filter(object_id=str(home.pk)).delete()
    output = io.StringIO()
    call_command("load_demo", stdout=output)
    home.refresh_from_db()
    assert [section["id"] for section in home.body.raw_data] == [section["id"] for section in original]
    assert "homepage: 6 sections added" in output.getvalue()
    assert home.live_revision is not None


def test_a_section_an_editor_removed_is_not_brought_back():
    home = HomePage.objects.get()
    removed = home.body.raw_data[-1]["id"]
    home.body = list(home.body.raw_data)[:-1]
    home.save_revision().publish()
    call_command("load_demo", stdout=io.StringIO())
    home.refresh_from_db()
    assert removed not in [section["id"] for section in home.body.raw_data]
