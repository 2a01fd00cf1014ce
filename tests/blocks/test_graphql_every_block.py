"""Every block of the library through GraphQL, with every field and rawValue (issue 14 item 10):
each child of ContentStreamBlock on its own in a page's StreamField, inside a PersonalizedBlock
and inside an ExperimentBlock resolves without an error and without a null block, and rawValue is
JSON of the block's stored form (datetimes, decimals and rich text included)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from wagtail import blocks
from wagtail.images import get_image_model

from cms.models import CategoryPage, HomePage, LandingPage, ProductPage
from graphql import FieldNode, FragmentDefinitionNode, InlineFragmentNode, parse
from tailored.blocks.commerce import OfferBannerBlock
from tailored.blocks.content import ContentStreamBlock
from tailored.blocks.graphql import prep_value, raw_json, stream_raw_value

pytestmark = pytest.mark.django_db

RICH = '<p>Made <b>to</b> last, <a href="/stories/">read why</a>.</p>'
EXPIRES = "2030-12-31T23:59:00Z"
COMMON = "id blockType field rawValue"
# Every field of each block type; `test_the_query_asks_for_every_field` keeps this list complete.
FIELDS = {
    "HeroBlock": f"heading subheading ctaLabel ctaUrl blocks {{ {COMMON} }}",
    "RichTextBlock": "value",
    "CTABlock": f"text buttonLabel url style blocks {{ {COMMON} }}",
    "ImageWithTextBlock": f"image {{ id url }} heading body imagePosition linkLabel url blocks {{ {COMMON} }}",
    "OfferBannerBlock": "heading text code expiresAt active buttonLabel url",
    "ProductCarouselBlock": "heading source count products(limit: 2) { id title url }",
    "RecommendationBlock": "heading strategy itemType count askFeedback products(limit: 2) { id title url } pages(limit: 2) { id title }",
    "PersonalizedMessageBlock": "message linkLabel url",
    "OnboardingSurveyBlock": "heading intro buttonLabel thanks shouldAsk categories { slug title } action",
}
SECTIONS = {
    "PersonalizedBlock": "variant variantLabel blocks { ...Block }",
    "ExperimentBlock": "experiment arm armLabel blocks { ...Block }",
}
# Nullable fields left empty here (an intro of "" reads as null).
NULLABLE = {"intro"}
QUERY = (
    "query EveryBlock($path: String!) { page(urlPath: $path) { ... on LandingPage { body { ...Block "
    + " ".join(f"... on {name} {{ {fields} }}" for name, fields in SECTIONS.items())
    + " } } } }\nfragment Block on StreamFieldInterface { "
    + COMMON
    + " "
    + " ".join(f"... on {name} {{ {fields} }}" for name, fields in FIELDS.items())
    + " }"
)


def library(image_pk: int, product_pks: list[int], category_pks: list[int]) -> dict[str, object]:
    """A stored value for each child of ContentStreamBlock, by block name."""
    return {
        "hero": {"heading": "Built to last", "subheading": "A line", "cta_label": "Shop", "cta_url": "/"},
        "rich_text": RICH,
        "cta": {"text": "Free delivery", "button_label": "See offers", "url": "/offers/", "style": "secondary"},
        "image_text": {
            "image": image_pk, "heading": "How we choose", "body": RICH, "image_position": "right",
            "link_label": "", "url": "",
        },
        "offer": {
            "heading": "20% off", "text": "", "code": "SAVE20", "expires_at": EXPIRES, "button_label": "", "url": "",
        },
        "product_carousel": {
            "heading": "Picks", "source": "manual", "products": product_pks, "category": None, "tag": "", "count": 4,
        },
        "recommendations": {"heading": "For you", "item_type": "product", "strategy": "trending", "count": 4, "ask_feedback": True},
        "message": {
            "text": "Hi {first_name}", "first_name_fallback": "there", "last_viewed_product_fallback": "",
            "favourite_category_fallback": "", "link_label": "Look", "url": "/",
        },
        "survey": {
            "heading": "What are you shopping for?", "intro": "", "categories": category_pks,
            "button_label": "Go", "thanks": "Thanks!",
        },
    }


def stream(values: dict[str, object], prefix: str) -> list[dict]:
    return [
        {"type": name, "value": value, "id": f"{prefix}-0000-4000-8000-{i:012d}"}
        for i, (name, value) in enumerate(values.items())
    ]


@pytest.fixture(autouse=True)
def _store(memory_store):
    cache.clear()
    return memory_store


@pytest.fixture
def values() -> dict[str, object]:
    image = get_image_model().objects.order_by("pk").first()
    products = list(ProductPage.objects.live().order_by("pk").values_list("pk", flat=True)[:3])
    categories = list(CategoryPage.objects.live().order_by("pk").values_list("pk", flat=True)[:2])
    found = library(image.pk, products, categories)
    assert set(found) == set(ContentStreamBlock().child_blocks), "a block of the library has no value here"
    return found


@pytest.fixture
def every_block_page(values) -> LandingPage:
    body = [
        *stream(values, "0e0e0e0e"),
        {"type": "personalized", "value": {"variants": [], "fallback": stream(values, "1e1e1e1e")}},
        {
            "type": "experiment",
            "value": {
                "experiment": "every-block-test",  # never started: everyone sees the first alternative
                "factor": "",
                "alternatives": [
                    {"type": "item", "id": "2e2e2e2e-0000-4000-8000-000000000001",
                     "value": {"key": "control", "label": "All", "content": stream(values, "3e3e3e3e")}},
                    {"type": "item", "id": "2e2e2e2e-0000-4000-8000-000000000002",
                     "value": {"key": "b", "label": "None", "content": []}},
                ],
            },
        },
    ]
    page = LandingPage(title="Every block", slug="every-block", body=body)
    HomePage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    return page


@pytest.fixture
def generous_cost(settings):
    # Three copies of the library in one document cost more than GRAPHQL_MAX_COST allows a
    # frontend: this test is about the blocks, not the limits.
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GRAPHQL_MAX_COST": 1_000_000}


def ask(client, document: str, variables: dict) -> dict:
    response = client.post("/graphql/", {"query": document, "variables": variables}, content_type="application/json")
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body["errors"]
    return body["data"]


def no_nulls(data, path="data") -> None:
    """No block, and no non-null field, came back null (a failed resolver nulls its block)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if value is None and key not in NULLABLE:
                raise AssertionError(f"{path}.{key} is null")
            no_nulls(value, f"{path}.{key}")
    elif isinstance(data, list):
        for i, item in enumerate(data):
            assert item is not None, f"{path}[{i}] is null"
            no_nulls(item, f"{path}[{i}]")


def check_library(blocks_: list[dict], values: dict[str, object]) -> None:
    """Each block of the library, in order, with its rawValue the JSON of its stored form."""
    assert [b["field"] for b in blocks_] == list(values)
    by_name = {b["field"]: b for b in blocks_}
    assert by_name["rich_text"]["rawValue"] == RICH  # grapple's RichTextBlock: the source itself
    raw = {name: json.loads(b["rawValue"]) for name, b in by_name.items() if name != "rich_text"}
    assert raw["hero"] == values["hero"]
    assert raw["cta"] == values["cta"]
    assert raw["image_text"] == values["image_text"]  # the image's id, the rich text's source
    assert raw["offer"]["expires_at"] == EXPIRES and raw["offer"]["code"] == "SAVE20"
    assert [item["value"] for item in raw["product_carousel"]["products"]] == values["product_carousel"]["products"]
    assert [item["value"] for item in raw["survey"]["categories"]] == values["survey"]["categories"]
    assert raw["recommendations"] == values["recommendations"]
    assert raw["message"] == values["message"]
    image_text = by_name["image_text"]
    assert image_text["body"] and "read why" in image_text["body"] and image_text["image"]["url"]
    assert by_name["offer"]["expiresAt"] == "2030-12-31T23:59:00+00:00" and by_name["offer"]["active"] is True
    assert len(by_name["product_carousel"]["products"]) == 2
    for struct in ("hero", "cta", "image_text"):  # their fields as blocks, each with a rawValue
        assert [child["field"] for child in by_name[struct]["blocks"]] == list(values[struct])
        assert all(isinstance(child["rawValue"], str) for child in by_name[struct]["blocks"])


def test_every_block_resolves_alone_in_a_personalized_block_and_in_an_experiment(
    client, every_block_page, values, generous_cost
):
    data = ask(client, QUERY, {"path": "/every-block/"})
    no_nulls(data)
    body = data["page"]["body"]
    assert len(body) == len(values) + 2
    check_library(body[: len(values)], values)
    personalized, experiment = body[len(values):]
    assert personalized["blockType"] == "PersonalizedBlock" and personalized["variant"] == "fallback"
    assert experiment["blockType"] == "ExperimentBlock" and experiment["arm"] == "control"
    for section in (personalized, experiment):
        check_library(section["blocks"], values)
        raw = json.loads(section["rawValue"])  # the shown content, as a StreamField stores it
        assert [(item["type"], item["id"]) for item in raw] == [(b["field"], b["id"]) for b in section["blocks"]]
        assert raw[list(values).index("offer")]["value"]["expires_at"] == EXPIRES


def test_the_query_asks_for_every_field(values):
    from grapple.schema import schema

    document = parse(QUERY)
    fragment = next(d for d in document.definitions if isinstance(d, FragmentDefinitionNode))
    common = {s.name.value for s in fragment.selection_set.selections if isinstance(s, FieldNode)}
    graphql_schema = schema.graphql_schema
    inline = [s for s in fragment.selection_set.selections if isinstance(s, InlineFragmentNode)]
    asked = {s.type_condition.name.value: {f.name.value for f in s.selection_set.selections} | common for s in inline}
    block_types = {type(block).__name__ for block in ContentStreamBlock().child_blocks.values()}
    assert set(asked) == block_types  # every block of the library has its fragment
    for name, fields in asked.items():
        assert fields == set(graphql_schema.get_type(name).fields), name


def test_an_expired_offer_keeps_its_code_out_of_every_raw_value(client, values, generous_cost):
    expired = {**values["offer"], "expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    page = LandingPage(title="Expired", slug="expired-offer", body=[
        {"type": "offer", "value": expired},
        {"type": "personalized", "value": {"variants": [], "fallback": [{"type": "offer", "value": expired}]}},
    ])
    HomePage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    data = ask(client, QUERY, {"path": "/expired-offer/"})
    alone, personalized = data["page"]["body"]
    assert alone["code"] is None and json.loads(alone["rawValue"])["code"] is None
    assert personalized["blocks"][0]["code"] is None
    assert json.loads(personalized["rawValue"])[0]["value"]["code"] is None
    assert "SAVE20" not in json.dumps(data)


def test_datetimes_decimals_and_rich_text_serialise():
    block = blocks.StructBlock([
        ("price", blocks.DecimalBlock()),
        ("when", blocks.DateTimeBlock()),
        ("text", blocks.RichTextBlock()),
        ("items", blocks.ListBlock(blocks.DecimalBlock())),
    ])
    value = block.to_python({"price": "12.50", "when": "2030-01-02T03:04:05Z", "text": RICH, "items": ["1.10"]})
    raw = json.loads(raw_json(prep_value(block, value)))
    assert raw["price"] == "12.50" and raw["when"] == "2030-01-02T03:04:05Z" and raw["text"] == RICH
    assert [item["value"] for item in raw["items"]] == ["1.10"]
    assert Decimal(raw["price"]) == Decimal("12.50")
    offers = blocks.StreamBlock([("offer", OfferBannerBlock())])
    content = offers.to_python([{"type": "offer", "value": {**library(1, [], [])["offer"]}, "id": "x"}])
    assert json.loads(stream_raw_value(content)) == [
        {"type": "offer", "value": library(1, [], [])["offer"], "id": "x"}
    ]
    assert stream_raw_value(None) == "[]"
