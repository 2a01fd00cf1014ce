"""The block library over GraphQL: visitor-dependent blocks resolve through the same block
methods SSR uses (the products, the message, the offer's expiry), for the requesting visitor."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.cache import cache

from tests.helpers import ssr_variants

pytestmark = pytest.mark.django_db

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
HOMEPAGE = (OPERATIONS / "homepage.graphql").read_text()
HOMEPAGE_PRODUCTS = (OPERATIONS / "homepage_products.graphql").read_text()
LANDING = """
query Landing($path: String!) {
  page(urlPath: $path) {
    ... on LandingPage {
      body {
        blockType
        ... on PersonalizedBlock { variant blocks { blockType ... on HeroBlock { heading } ... on OfferBannerBlock { code active expiresAt } } }
        ... on ProductCarouselBlock { heading source products { id title url } }
      }
    }
  }
}
"""


@pytest.fixture(autouse=True)
def _store(memory_store):
    cache.clear()
    return memory_store


def query(client, document, variables=None, path="/graphql/"):
    response = client.post(path, {"query": document, "variables": variables or {}}, content_type="application/json")
    body = response.json()
    assert "errors" not in body, body.get("errors")
    return body["data"]


def test_a_campaign_landing_page_over_graphql(client):
    data = query(client, LANDING, {"path": "/spring-sale/"}, path="/graphql/?utm_campaign=spring-sale")
    hero, carousel = data["page"]["body"]
    assert hero["blocks"][0]["heading"] == "Thanks for reading: 20% off the spring sale"
    assert hero["blocks"][1] == {"blockType": "OfferBannerBlock", "code": "SPRING20", "active": True, "expiresAt": "2030-12-31T23:59:00+00:00"}
    assert carousel["source"] == "category" and len(carousel["products"]) == 8
    assert all(p["url"].startswith("/outdoors/") for p in carousel["products"])


def test_the_homepage_operation_returns_every_block_of_the_library(client):
    data = query(client, HOMEPAGE)
    body = data["page"]["body"]
    inner = [block for section in body for block in section.get("blocks", [section])]
    kinds = {block["blockType"] for block in inner}
    assert {"HeroBlock", "CTABlock", "PersonalizedMessageBlock", "ProductCarouselBlock", "OfferBannerBlock", "ImageWithTextBlock"} <= kinds
    message = next(b for b in inner if b["blockType"] == "PersonalizedMessageBlock")
    assert message["message"].startswith("Hi there, have a look around")
    ssr = ssr_variants(client.get("/").content.decode())
    assert [s["variant"] for s in body if s["blockType"] == "PersonalizedBlock"] == ssr


def test_the_homepage_product_rows_match_what_ssr_renders(client):
    html = client.get("/").content.decode()
    body = query(client, HOMEPAGE_PRODUCTS)["page"]["body"]
    rows = [block for section in body for block in section.get("blocks", [section]) if "products" in block]
    # Not four each: in the morning the daypart variant's row shows the demo's two coffee products.
    assert rows and all(row["products"] for row in rows)
    ssr_ids = re.findall(r'data-tl-product="(\d+)"', html)
    assert [p["id"] for row in rows for p in row["products"]] == ssr_ids
