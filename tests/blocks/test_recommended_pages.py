"""Any content (issue 22 item 6): registered page types (the demo registers articles) are trained
on from their page views, recommended by a block or GraphQL with that item type, and never mixed
into product recommendations."""

from __future__ import annotations

import time

import pytest

from cms.models import ArticlePage, ProductPage
from tailored.blocks import products as catalog
from tailored.blocks.commerce import RecommendationBlock
from tailored.ml import registry
from tailored.ml.catalog import item_type_choices, site_catalog
from tailored.ml.recommender import interactions_from_events, train_recommender

pytestmark = pytest.mark.django_db


@pytest.fixture
def models_dir(settings, tmp_path):
    settings.PERSONALIZATION = {"PRODUCT_MODEL": "cms.ProductPage", "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore", "MODEL_DIR": str(tmp_path)}
    return tmp_path


def article_pairs_model(pairs, now):
    """Trained from stored-event rows: 40 visitors per pair read both articles (page views that
    carry no product, only the page ids tracker.js sends), and viewed one product."""
    catalog_items = site_catalog()
    pages = {item.id for item in catalog_items if item.item_type != "product"}
    product = str(ProductPage.objects.live().values_list("pk", flat=True).first())
    rows = []
    for a, b in pairs:
        for n in range(40):
            visitor = f"r{n}-{a}-{b}"
            rows += [(visitor, "page_view", None, now - 60 + i, {"pages": f"3 {page}"}) for i, page in enumerate((a, b))]
            rows.append((visitor, "page_view", product, now - 30, {"pages": f"3 4 {product}"}))
    return train_recommender(interactions_from_events(rows, page_items=pages), catalog_items, now=now, seed=1)


@pytest.fixture
def articles():
    found = list(ArticlePage.objects.live().order_by("pk")[:4])
    if len(found) < 4:
        pytest.skip("the test data has fewer than four live articles")
    return found


def test_the_demo_registers_articles_for_the_block():
    assert ("product", "Products") in item_type_choices()
    assert "article" in dict(item_type_choices())


def test_an_article_block_recommends_the_articles_read_with_the_one_being_read(models_dir, articles):
    first, second, third, fourth = articles
    registry.publish(catalog.RECOMMENDER, article_pairs_model([(str(first.pk), str(second.pk)), (str(third.pk), str(fourth.pk))], time.time()), {})
    shown = catalog.recommended_pages(None, 2, "article", page=third)
    assert shown and shown[0].pk == fourth.pk
    assert third.pk not in {page.pk for page in shown}
    assert all(isinstance(page, ArticlePage) for page in shown)


def test_product_recommendations_never_include_articles(models_dir, articles):
    first, second, *_ = articles
    registry.publish(catalog.RECOMMENDER, article_pairs_model([(str(first.pk), str(second.pk))], time.time()), {})
    shown = catalog.recommended(None, 8)
    assert shown and all(isinstance(product, ProductPage) for product in shown)


def test_without_a_model_an_article_block_shows_the_newest_other_articles(models_dir, articles):
    shown = catalog.recommended_pages(None, 3, "article", page=articles[0])
    assert shown and articles[0].pk not in {page.pk for page in shown}


def test_the_block_renders_article_cards_with_links(models_dir, articles):
    block = RecommendationBlock()
    value = block.to_python({"heading": "More to read", "item_type": "article", "strategy": "recommended", "count": 3, "ask_feedback": False})
    html = block.render(value, context={"page": articles[0]})
    assert "More to read" in html and 'data-tl-item-type="article"' in html
    assert articles[0].title not in html


def test_graphql_recommended_pages_matches_the_block(models_dir, articles, client):
    body = {"query": "query($id: ID) { recommendedPages(itemType: \"article\", first: 3, item: $id) { id title } }", "variables": {"id": str(articles[0].pk)}}
    data = client.post("/graphql/", body, content_type="application/json").json()["data"]
    assert [int(page["id"]) for page in data["recommendedPages"]] == [page.pk for page in catalog.recommended_pages(None, 3, "article", page=articles[0])]


def test_graphql_refuses_an_unknown_item_type(models_dir, client):
    body = {"query": "{ recommendedPages(itemType: \"podcast\") { id } }"}
    errors = client.post("/graphql/", body, content_type="application/json").json()["errors"]
    assert "podcast" in errors[0]["message"]


def test_the_page_cache_keeps_article_rows_apart_for_visitors_who_read_differently(models_dir):
    from types import SimpleNamespace

    from tailored.core.types import Profile

    block = RecommendationBlock()
    value = block.to_python({"heading": "More to read", "item_type": "article", "strategy": "recommended", "count": 3, "ask_feedback": False})
    parts = {
        block.page_cache_part(value, SimpleNamespace(id=name, profile=Profile(visitor_id=name, recent_items=recent)))
        for name, recent in (("a", (("1", 1.0),)), ("b", (("2", 1.0),)), ("c", (("2", 1.0),)))
    }
    assert len(parts) == 2  # b and c read the same: one cached copy serves both
