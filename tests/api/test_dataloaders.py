"""No N+1 over GraphQL: the homepage and carousel operations cost a fixed number of queries,
whatever the number of products, and a product or segment is read once per request (the
request-scoped loaders of tailored.api.dataloaders)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cms.models import HomePage
from tailored.api import dataloaders
from tailored.blocks import products as catalog
from tailored.models import Segment
from tailored.products import product_model_label

pytestmark = pytest.mark.django_db

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
CAROUSEL = (OPERATIONS / "carousel.graphql").read_text()
HOMEPAGE = (OPERATIONS / "homepage.graphql").read_text()
HOMEPAGE_PRODUCTS = (OPERATIONS / "homepage_products.graphql").read_text()


@pytest.fixture(autouse=True)
def _store(memory_store, settings):
    # Process-wide caches (segments, experiments) re-check the database every few seconds; a
    # re-check falling between two measured requests would count a query that is not theirs.
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "SEGMENT_REFRESH_SECONDS": 3600}
    return memory_store


def queries_for(client, document: str, variables: dict | None = None) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/graphql/", {"query": document, "variables": variables or {}}, content_type="application/json")
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return len(captured), body["data"]


def set_row_sizes(size: int) -> None:
    """Every product row of the live homepage (carousels and recommendations, in variants too)
    shows `size` products."""
    home = HomePage.objects.get()
    raw = home.body.raw_data
    for block in _walk(raw):
        if block["type"] in ("product_carousel", "recommendations"):
            block["value"]["count"] = size
    home.body = raw
    home.save()


def _walk(blocks):
    for block in blocks:
        yield block
        value = block.get("value")
        if isinstance(value, dict):
            for child in ("fallback", "content"):
                yield from _walk(value.get(child) or [])
            for variant in value.get("variants") or []:
                yield from _walk(variant["value"]["content"])


def test_a_carousel_costs_the_same_queries_for_two_or_twenty_products(client):
    queries_for(client, CAROUSEL, {"source": "trending", "first": 1})  # warm the process-wide caches
    few, small = queries_for(client, CAROUSEL, {"source": "trending", "first": 2})
    many, large = queries_for(client, CAROUSEL, {"source": "trending", "first": 20})
    assert (len(small["carousel"]), len(large["carousel"])) == (2, 20)
    assert few == many <= 2  # the products, then their images' renditions


def test_a_category_carousel_brings_category_and_image_in_the_same_queries(client):
    document = CAROUSEL.replace("category {\n    slug\n  }", "category { slug }\n  image { url }")
    queries_for(client, document, {"source": "category", "category": "electronics", "first": 1})  # warm the caches
    few, _ = queries_for(client, document, {"source": "category", "category": "electronics", "first": 2})
    many, data = queries_for(client, document, {"source": "category", "category": "electronics", "first": 10})
    assert {product["category"]["slug"] for product in data["carousel"]} == {"electronics"}
    assert few == many


def test_a_product_in_two_rows_of_one_response_is_read_once(client):
    one = "{ a: carousel(source: \"trending\", first: 8) { id title } }"
    two = "{ a: carousel(source: \"trending\", first: 8) { id title } b: recommendations(first: 8) { id title } }"
    queries_for(client, one)  # warm the process-wide caches
    single, _ = queries_for(client, one)
    double, data = queries_for(client, two)
    # Without a trained model both rows are the trending ranking: the same products.
    assert [p["id"] for p in data["b"]] == [p["id"] for p in data["a"]] and len(data["a"]) == 8
    assert double == single  # the second row found every product already loaded


@pytest.mark.parametrize("document", [HOMEPAGE, HOMEPAGE_PRODUCTS], ids=["homepage", "homepage_products"])
def test_the_homepage_operations_do_not_grow_with_the_rows(client, document):
    rows_asked = "products(limit" in document
    document = document.replace("limit: 4", "limit: 5")  # 5: the most the cost limit allows here
    set_row_sizes(2)
    queries_for(client, document)  # after a page save, caches reload once (steady state is measured)
    small, _ = queries_for(client, document)
    set_row_sizes(5)
    queries_for(client, document)
    large, data = queries_for(client, document)
    assert small == large
    if rows_asked:
        body = data["page"]["body"]
        rows = [b for b in [*body, *(c for b in body for c in b.get("blocks", ()))] if "products" in b]
        assert rows and max(len(row["products"]) for row in rows) == 5


def test_the_segment_list_is_one_query_whatever_its_length(client, django_user_model):
    client.force_login(django_user_model.objects.get(username="editor"))
    document = (OPERATIONS / "segments.graphql").read_text()
    queries_for(client, document)  # warm the caches
    before, first = queries_for(client, document)
    for n in range(10):
        Segment.objects.create(name=f"Extra {n}", slug=f"extra-{n}", rule={"all": [{"field": "profile.sessions", "op": "gte", "value": n}]})
    queries_for(client, document)  # the segment cache reloads the edited definitions once
    after, second = queries_for(client, document)
    assert len(second["segments"]) == len(first["segments"]) + 10
    assert after == before


def test_loaders_remember_what_they_loaded_within_a_scope_only():
    ids = list(catalog.product_queryset().values_list("pk", flat=True)[:5])
    with dataloaders.request_scope() as loaders:
        catalog.by_ids(ids, 5)
        catalog.by_ids(reversed(ids), 5)
        assert loaders.model(product_model_label(), catalog.product_queryset).queries == 1
    with dataloaders.request_scope() as loaders:
        catalog.by_ids(ids, 5)
        assert loaders.model(product_model_label(), catalog.product_queryset).queries == 1
