"""Site-level queries (issue 6): segments for editors, recommendations and carousels for the
requesting visitor, and `page(..., preview: {...})` for an editor's headless preview."""

from __future__ import annotations

from pathlib import Path

import pytest

from cms.models import ProductPage
from tests.helpers import consent_cookies, make_fan

pytestmark = pytest.mark.django_db

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
ELECTRONICS_VARIANT = "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01"


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def post(client, operation: str, variables: dict | None = None) -> dict:
    body = {"query": (OPERATIONS / f"{operation}.graphql").read_text(), "variables": variables or {}}
    response = client.post("/graphql/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def codes(body: dict) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


# segments --------------------------------------------------------------------------------------


def test_an_editor_lists_every_segment_with_its_rule(editor):
    body = post(editor, "segments")
    assert "errors" not in body
    segments = {s["slug"]: s for s in body["data"]["segments"]}
    assert "electronics-fans" in segments
    fans = segments["electronics-fans"]
    assert fans["name"] and isinstance(fans["enabled"], bool) and isinstance(fans["priority"], int)
    assert isinstance(fans["rule"], str) and fans["rule"].startswith("{")
    priorities = [s["priority"] for s in body["data"]["segments"]]
    assert priorities == sorted(priorities, reverse=True)


def test_anyone_else_is_forbidden_the_segments(client):
    body = post(client, "segments")
    assert body["data"]["segments"] is None
    assert codes(body) == ["FORBIDDEN"]


# recommendations and carousels -----------------------------------------------------------------


def test_recommendations_have_the_product_shape_and_respect_first(client):
    body = post(client, "recommendations", {"first": 3})
    assert "errors" not in body
    products = body["data"]["recommendations"]
    assert len(products) == 3
    for product in products:
        assert set(product) == {"id", "title", "url", "price", "category"}
        assert product["category"]["slug"]


def test_recommendations_leave_out_the_item_being_viewed(client):
    first = post(client, "recommendations", {"first": 5})["data"]["recommendations"]
    viewed = first[0]["id"]
    again = post(client, "recommendations", {"first": 5, "item": viewed})["data"]["recommendations"]
    assert viewed not in {p["id"] for p in again}


def test_recently_viewed_recommendations_follow_the_visitor(client):
    make_fan("f" * 32, views=3)
    consent_cookies(client, "f" * 32)
    products = post(client, "recommendations", {"strategy": "recently_viewed"})["data"]["recommendations"]
    live_ids = {str(pk) for pk in ProductPage.objects.live().filter(pk__in=[1, 2, 3]).values_list("pk", flat=True)}
    assert {p["id"] for p in products} == live_ids


@pytest.mark.parametrize(("args", "code"), [({"strategy": "psychic"}, "BAD_USER_INPUT"), ({"first": -1}, "BAD_USER_INPUT")])
def test_bad_recommendation_arguments_are_refused(client, args, code):
    body = post(client, "recommendations", args)
    assert body["data"] is None or body["data"].get("recommendations") is None
    assert codes(body) == [code]


def test_more_than_100_is_refused_before_execution(client):
    body = {"query": (OPERATIONS / "recommendations.graphql").read_text(), "variables": {"first": 101}}
    response = client.post("/graphql/", body, content_type="application/json")
    assert response.status_code == 400
    assert codes(response.json()) == ["LIST_TOO_LARGE"]


def test_a_category_carousel_holds_that_category_only(client):
    slug = ProductPage.objects.live().select_related("category").first().category.slug
    products = post(client, "carousel", {"source": "category", "category": slug, "first": 4})["data"]["carousel"]
    assert 0 < len(products) <= 4
    assert {p["category"]["slug"] for p in products} == {slug}


def test_a_tag_carousel_and_a_trending_one(client):
    tagged = post(client, "carousel", {"source": "tag", "tag": "desk"})
    assert "errors" not in tagged
    trending = post(client, "carousel", {"source": "trending", "first": 2})["data"]["carousel"]
    assert len(trending) == 2


@pytest.mark.parametrize("args", [{"source": "manual"}, {"source": "category"}, {"source": "trending", "first": 500}])
def test_bad_carousel_arguments_are_refused(client, args):
    response = client.post(
        "/graphql/",
        {"query": (OPERATIONS / "carousel.graphql").read_text(), "variables": args},
        content_type="application/json",
    )
    body = response.json()
    assert codes(body) and set(codes(body)) <= {"BAD_USER_INPUT", "LIST_TOO_LARGE"}


# preview ---------------------------------------------------------------------------------------


def variants(body: dict) -> list[str]:
    return [b["variant"] for b in body["data"]["page"]["body"] if b["blockType"] == "PersonalizedBlock"]


def test_an_editor_previewing_as_electronics_fans_gets_that_variant(editor):
    body = post(editor, "preview_homepage", {"preview": {"segments": ["electronics-fans"]}})
    assert "errors" not in body, body
    assert variants(body)[0] == ELECTRONICS_VARIANT


def test_the_preview_overrides_the_editors_own_profile(editor):
    make_fan("f" * 32, views=3)
    consent_cookies(editor, "f" * 32)
    body = post(editor, "preview_homepage", {"preview": {"segments": ["outdoors-fans"]}})
    assert variants(body)[0] != ELECTRONICS_VARIANT


def test_an_empty_audience_gets_the_fallback(editor):
    body = post(editor, "preview_homepage", {"preview": {"device": "desktop"}})
    assert variants(body)[0] == "fallback"


def test_an_anonymous_client_is_forbidden_the_preview(client):
    body = post(client, "preview_homepage", {"preview": {"segments": ["electronics-fans"]}})
    assert body["data"]["page"] is None
    assert codes(body) == ["FORBIDDEN"]


def test_page_without_preview_is_grapples_page(client):
    response = client.post(
        "/graphql/", {"query": '{ page(urlPath: "/") { id title } }'}, content_type="application/json"
    )
    assert response.json()["data"]["page"]["title"]
