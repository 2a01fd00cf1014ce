"""The demo shop: enough content to personalize, loaded idempotently."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from wagtail.models import Page, Revision, Site

from cms.models import CategoryPage, HomePage, ProductPage
from tailored.models import Segment

pytestmark = pytest.mark.django_db


def test_the_demo_shop_is_loaded():
    home = HomePage.objects.get()
    assert Site.objects.get(is_default_site=True).root_page_id == home.id
    assert CategoryPage.objects.child_of(home).live().count() >= 6
    assert ProductPage.objects.live().count() >= 60
    assert all(p.description and p.price > 0 for p in ProductPage.objects.all())
    assert {p.get_parent().id for p in ProductPage.objects.all()} == set(CategoryPage.objects.values_list("id", flat=True))
    assert Segment.objects.filter(slug="electronics-fans", enabled=True).exists()
    assert get_user_model().objects.filter(username="editor", is_superuser=True).exists()


def test_the_homepage_has_a_personalized_hero_with_a_fallback():
    body = HomePage.objects.get().body
    personalized = [block for block in body if block.block_type == "personalized"]
    assert len(personalized) >= 1
    hero = personalized[0].value
    assert hero["fallback"]
    assert [v["segments"] for v in hero["variants"]][0] == ["electronics-fans"]


def test_running_it_again_changes_nothing():
    def snapshot():
        return (
            Page.objects.count(),
            Revision.objects.count(),
            Segment.objects.count(),
            list(Segment.objects.values_list("updated_at", flat=True)),
            get_user_model().objects.count(),
            list(HomePage.objects.values_list("latest_revision_id", flat=True)),
        )

    before = snapshot()
    output = io.StringIO()
    call_command("load_demo", stdout=output)
    assert snapshot() == before
    assert "0 categories and 0 products created" in output.getvalue()
    # Progress through the catalog, every tenth, with the time left.
    total = ProductPage.objects.count()
    assert f"product pages: {total}/{total} (100%), about 0 s left" in output.getvalue()
    assert re.search(rf"  product pages: {total // 10}/{total} \(\d+%\), about \d+ s left", output.getvalue())


@pytest.mark.django_db
def test_the_demo_catalog_marks_some_products_out_of_stock():
    out = set(ProductPage.objects.filter(in_stock=False).values_list("title", flat=True))
    assert out == {"Smart home starter kit", "Trail running shoes"}
