"""The recommendation block as a decided block (issue 17 item 5): its SSR wrapper carries the
decision tracker.js reads (its own stream block id, and the model version that chose the list as
its variant, or the fallback's name) in both template languages, GraphQL lists the same in
`extensions.decisions`, and the page cache keys on it."""

from __future__ import annotations

import re
import time

import pytest
from django.core.cache import cache

from cms.models import ArticlePage, ProductPage
from tailored.blocks import page_cache
from tailored.blocks import products as catalog
from tailored.blocks.content import ContentStreamBlock
from tailored.ml import registry
from tests.blocks.test_recommended import pairs_model
from tests.frontend.test_template_languages import DJANGO_ONLY, JINJA2_FIRST, request_for, visitor

pytestmark = pytest.mark.django_db

BLOCK_ID = "5b0f1d3e-0c4a-4d7e-9a51-7e2b9c1d0a01"
PERSONALIZED_ID = "5b0f1d3e-0c4a-4d7e-9a51-7e2b9c1d0a02"
RECOMMENDED = {"heading": "For you", "item_type": "product", "strategy": "recommended", "count": 4, "ask_feedback": True}
WRAPPER = re.compile(r'<section class="carousel carousel--recommendations"[^>]*>')


@pytest.fixture
def models_dir(memory_store, personalization, tmp_path):
    personalization(MODEL_DIR=str(tmp_path))
    cache.clear()
    yield tmp_path
    cache.clear()


def published_model() -> str:
    first, second = (str(pk) for pk in ProductPage.objects.live().filter(in_stock=True).values_list("pk", flat=True)[:2])
    version = registry.publish(catalog.RECOMMENDER, pairs_model([(first, second)], time.time()), {})
    registry.get_registry().forget()  # at once, not at the process's next re-check of CURRENT
    return version


def top_level(value=RECOMMENDED):
    """A page body with the recommendation block at the top, as Wagtail stores it."""
    return ContentStreamBlock().to_python([{"type": "recommendations", "value": value, "id": BLOCK_ID}])


def wrapper_in(templates, stream) -> str:
    from django.test import override_settings

    with override_settings(TEMPLATES=templates):
        html = str(stream[0].render(context={"request": request_for(visitor())}))
    return WRAPPER.search(html).group(0)


@pytest.mark.parametrize("templates", [DJANGO_ONLY, JINJA2_FIRST], ids=["django", "jinja2"])
def test_the_wrapper_names_its_block_and_the_model_version_in_both_languages(models_dir, templates):
    version = published_model()
    wrapper = wrapper_in(templates, top_level())
    assert f'data-tl-block-id="{BLOCK_ID}"' in wrapper
    assert f'data-tl-variant="model:{version}"' in wrapper


@pytest.mark.parametrize("templates", [DJANGO_ONLY, JINJA2_FIRST], ids=["django", "jinja2"])
def test_without_a_model_the_variant_is_popular(models_dir, templates):
    wrapper = wrapper_in(templates, top_level())
    assert f'data-tl-block-id="{BLOCK_ID}"' in wrapper and 'data-tl-variant="popular"' in wrapper


@pytest.mark.parametrize("templates", [DJANGO_ONLY, JINJA2_FIRST], ids=["django", "jinja2"])
def test_inside_a_personalized_block_it_carries_its_own_id_not_the_enclosing_blocks(models_dir, templates):
    from wagtail.blocks import StreamBlock

    from tailored.blocks.personalized import PersonalizedBlock

    stream = StreamBlock([("personalized", PersonalizedBlock())]).to_python([{
        "type": "personalized", "id": PERSONALIZED_ID,
        "value": {"variants": [], "fallback": [{"type": "recommendations", "value": RECOMMENDED, "id": BLOCK_ID}]},
    }])
    from django.test import override_settings

    with override_settings(TEMPLATES=templates):
        html = str(stream[0].render(context={"request": request_for(visitor())}))
    assert f'data-tl-block-id="{PERSONALIZED_ID}"' in html  # the personalized wrapper
    assert f'data-tl-block-id="{BLOCK_ID}"' in WRAPPER.search(html).group(0)


def test_the_page_cache_part_changes_with_the_model_version(models_dir):
    block, value = ContentStreamBlock().child_blocks["recommendations"], top_level()[0].value
    who = visitor()
    without = block.page_cache_part(value, who)
    version = published_model()
    with_model = block.page_cache_part(value, who)
    assert without.endswith("|popular") and with_model.endswith(f"|model:{version}")
    # The page cache asks the block itself (its own page_cache_part), so the key follows.
    assert page_cache.part_of(block, block.get_prep_value(value), who) == with_model


def test_graphql_lists_the_recommendation_decision_in_extensions(client, models_dir):
    article = ArticlePage.objects.live().first()
    block_id = next(child.id for child in article.body if child.block_type == "recommendations")
    version = published_model()
    document = """query($path: String!) { page(urlPath: $path) { ... on ArticlePage { body {
        id ... on RecommendationBlock { pages { id } } } } } }"""
    response = client.post("/graphql/", {"query": document, "variables": {"path": article.url}}, content_type="application/json")
    body = response.json()
    assert "errors" not in body, body.get("errors")
    decisions = {d["block"]: d for d in body["extensions"]["decisions"]}
    assert decisions[block_id]["variant"] in (f"model:{version}", "newest")
    assert decisions[block_id]["experiment"] is None
