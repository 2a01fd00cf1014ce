"""Every personalized decision in a GraphQL response is listed in `extensions.decisions`, so a
headless frontend can report exposures for exactly what it received (issue 9, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import consent_cookies, make_fan

pytestmark = pytest.mark.django_db

HOMEPAGE = (Path(__file__).parents[2] / "graphql" / "operations" / "homepage.graphql").read_text()
HERO_BLOCK = "6d1f6c52-4a4e-4a4f-9b0a-0c3f2b1d7a10"
ELECTRONICS_VARIANT = "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01"


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def post(client, query: str) -> dict:
    response = client.post("/graphql/", {"query": query}, content_type="application/json")
    return response.json()


def test_each_personalized_block_of_the_response_is_listed_once_with_its_variant(client):
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    body = post(client, HOMEPAGE)
    chosen = {block["id"]: block["variant"] for block in body["data"]["page"]["body"] if block["blockType"] == "PersonalizedBlock"}
    listed = body["extensions"]["decisions"]
    assert {d["block"]: d["variant"] for d in listed} == chosen
    assert len(listed) == len(chosen) > 1
    assert {"block": HERO_BLOCK, "variant": ELECTRONICS_VARIANT, "experiment": None, "arm": None, "holdout": False} in listed


def test_an_anonymous_visitor_sees_the_fallback_decisions(client):
    listed = post(client, HOMEPAGE)["extensions"]["decisions"]
    assert {"block": HERO_BLOCK, "variant": "fallback", "experiment": None, "arm": None, "holdout": False} in listed


def test_a_response_without_personalized_blocks_has_no_decisions(client):
    body = post(client, '{ page(urlPath: "/") { title } }')
    assert body["data"]["page"]["title"] and "extensions" not in body


def test_a_refused_document_carries_errors_only(client):
    body = post(client, "{ page(urlPath: ")
    assert body["errors"] and "extensions" not in body and "data" not in body
