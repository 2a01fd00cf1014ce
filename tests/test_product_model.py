"""PERSONALIZATION["PRODUCT_MODEL"]: the product blocks read the site's own model, and a site
without one is offered no product blocks (issue 13 item 2)."""

from __future__ import annotations

import pytest

from cms.models import CategoryPage, ProductPage
from tailored.blocks.commerce import CategoryChooserBlock, ProductChooserBlock
from tailored.blocks.content import PRODUCT_BLOCKS, ContentStreamBlock
from tailored.blocks.engagement import category_title, last_viewed_product_title
from tailored.core.types import Profile
from tailored.ml.catalog import demo_catalog
from tailored.products import category_model_label, product_model_label


@pytest.fixture
def no_product_model(settings):
    settings.PERSONALIZATION = {k: v for k, v in settings.PERSONALIZATION.items() if k != "PRODUCT_MODEL"}


def test_the_demo_names_its_product_model_and_the_category_follows_its_field():
    assert product_model_label() == "cms.ProductPage"
    assert category_model_label() == "cms.CategoryPage"
    assert ProductChooserBlock().target_models == [ProductPage]
    assert CategoryChooserBlock().target_models == [CategoryPage]


def test_a_category_model_setting_wins_over_the_field(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "CATEGORY_MODEL": "cms.ArticleIndexPage"}
    assert category_model_label() == "cms.ArticleIndexPage"


def test_with_a_product_model_every_product_block_is_offered():
    assert set(PRODUCT_BLOCKS) <= set(ContentStreamBlock().child_blocks)


def test_without_a_product_model_no_product_block_is_offered(no_product_model):
    offered = set(ContentStreamBlock().child_blocks)
    assert not offered & set(PRODUCT_BLOCKS)
    assert {"hero", "rich_text", "cta", "message"} <= offered


@pytest.mark.django_db
def test_without_a_product_model_the_catalog_is_empty_and_tokens_fall_back(no_product_model):
    profile = Profile(recent_items=(("1", 1.0),))
    assert demo_catalog() == []
    assert last_viewed_product_title(profile) is None
    assert category_title("electronics") is None
