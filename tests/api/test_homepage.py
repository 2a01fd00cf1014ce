"""The homepage over GraphQL: the same choice SSR makes, and nothing of other audiences."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MOBILE_UA
from tests.helpers import consent_cookies, make_fan, ssr_variants

pytestmark = pytest.mark.django_db

HOMEPAGE = (Path(__file__).parents[2] / "graphql" / "operations" / "homepage.graphql").read_text()
ELECTRONICS_VARIANT = "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01"


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def query_homepage(client, **headers) -> dict:
    response = client.post("/graphql/", {"query": HOMEPAGE}, content_type="application/json", **headers)
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body.get("errors")
    return body


def graphql_variants(body: dict) -> list[str]:
    return [block["variant"] for block in body["data"]["page"]["body"] if block["blockType"] == "PersonalizedBlock"]


def test_an_electronics_fan_gets_the_electronics_variant_only(client):
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    body = query_homepage(client)
    hero_block = body["data"]["page"]["body"][0]
    assert hero_block["variant"] == ELECTRONICS_VARIANT
    assert hero_block["variantLabel"] == "Electronics fans"
    assert hero_block["blocks"][0]["heading"] == "The latest in electronics, picked for you"


def test_other_audiences_content_never_leaves_the_server(client):
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    response = client.post(
        "/graphql/",
        {"query": '{ page(urlPath: "/") { ... on HomePage { body { rawValue ... on PersonalizedBlock { blocks { rawValue } } } } } }'},
        content_type="application/json",
    )
    text = response.content.decode()
    assert "The latest in electronics" in text
    for other in ("Ready for the trail?", "Good things for every day", "outdoors-fans", "Get the app"):
        assert other not in text


def test_an_anonymous_visitor_gets_the_fallback(client):
    assert graphql_variants(query_homepage(client))[:2] == ["fallback", "fallback"]


@pytest.mark.parametrize(
    ("visitor", "views", "user_agent"),
    [("f" * 32, 3, None), ("b" * 32, 1, None), ("c" * 32, 3, MOBILE_UA), (None, 0, MOBILE_UA)],
    ids=["electronics-fan", "casual", "mobile-fan", "anonymous-mobile"],
)
def test_graphql_and_ssr_choose_the_same_variants(client, visitor, views, user_agent):
    headers = {"HTTP_USER_AGENT": user_agent} if user_agent else {}
    if visitor:
        make_fan(visitor, views=views)
        consent_cookies(client, visitor)
    ssr = ssr_variants(client.get("/", **headers).content.decode())
    assert graphql_variants(query_homepage(client, **headers)) == ssr
