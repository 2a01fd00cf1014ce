"""Pay only for what is shown (issue 21 item 4): a page decodes only the chosen variant of each
PersonalizedBlock, so its queries do not grow with its number of variants; blocks that do not
depend on the visitor never resolve it; the fragment cache reads a page's fragments at once."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django.utils.functional import empty
from wagtail.images import get_image_model

from cms.models import HomePage, LandingPage, ProductPage
from tailored import fragments
from tailored.blocks.commerce import ProductChooserBlock
from tailored.blocks.personalized import decide_page
from tests.helpers import consent_cookies, make_fan, steady_queries

pytestmark = pytest.mark.django_db

FAN = "f" * 32
BLOCKS = 8


def _id() -> str:
    return str(uuid.uuid4())


def content(products: list[int], image: int, heading: str) -> list[dict]:
    """A variant's content that costs lookups when decoded: picked products and an image."""
    return [
        {"type": "hero", "id": _id(), "value": {"heading": heading, "subheading": "", "cta_label": "", "cta_url": ""}},
        {"type": "product_carousel", "id": _id(), "value": {
            "heading": f"{heading} picks", "source": "manual", "category": None, "tag": "", "count": 4,
            "products": [{"type": "item", "value": pk, "id": _id()} for pk in products]}},
        {"type": "image_text", "id": _id(), "value": {
            "image": image, "heading": heading, "body": "", "image_position": "left", "link_label": "", "url": ""}},
    ]


def body(variants: int, products: list[int], images: list[int]) -> list[dict]:
    """BLOCKS personalized blocks of `variants` variants each; the electronics fan gets variant 1
    of every block, and each variant shows other products and another image."""
    sections = []
    for b in range(BLOCKS):
        items = []
        for v in range(variants):
            segment = "electronics-fans" if v == 0 else "outdoors-fans"
            picked = products[(b + v) % len(products):][:4] or products[:4]
            items.append({"type": "item", "id": _id(), "value": {
                "label": f"block {b} variant {v}", "segments": [segment], "devices": [], "dayparts": [],
                "weekdays": [], "regions": [], "weather": [], "campaigns": [], "starts_at": None, "ends_at": None,
                "summary": "", "content": content(picked, images[(b + v) % len(images)], f"Block {b} variant {v}")}})
        fallback = content(products[:2], images[0], f"Block {b} fallback")
        sections.append({"type": "personalized", "id": _id(), "value": {"variants": items, "fallback": fallback}})
    return sections


@pytest.fixture
def page(memory_store, personalization):
    # Rendering is measured here: the decision-keyed page cache (its own tests) is off.
    personalization(PAGE_CACHE_SECONDS=0)
    cache.clear()
    landing = LandingPage(title="Many variants", slug="many-variants", body=[])
    HomePage.objects.get().add_child(instance=landing)
    yield landing
    cache.clear()


def measure(client, landing, raw, before=lambda: None) -> tuple[int, list[str], str]:
    landing.body = raw
    landing.save_revision().publish()
    fragments.invalidate_page(landing.pk)
    client.get(landing.url)  # warm: renditions, the site root, the segment cache

    def ask() -> str:
        before()
        response = client.get(landing.url)
        assert response.status_code == 200
        return response.content.decode()

    sqls, html = steady_queries(ask)
    return len(sqls), sqls, html


def test_six_variants_cost_the_queries_of_two_and_only_the_shown_are_looked_up(client, page, monkeypatch):
    products = list(ProductPage.objects.live().order_by("pk").values_list("pk", flat=True))
    images = list(get_image_model().objects.order_by("pk").values_list("pk", flat=True))
    assert len(products) >= 12 and len(images) >= 3
    make_fan(FAN)
    consent_cookies(client, FAN)

    decoded: list[list[int]] = []  # each product look-up's ids, through the real method
    real = ProductChooserBlock.bulk_to_python
    monkeypatch.setattr(ProductChooserBlock, "bulk_to_python", lambda self, values: decoded.append(list(values)) or real(self, values))

    two, sqls_two, _ = measure(client, page, body(2, products, images))
    six, sqls, html_six = measure(client, page, body(6, products, images), before=decoded.clear)
    assert six == two, f"a page's queries grew with its number of variants: {sorted(set(sqls) - set(sqls_two))}"
    for b in range(BLOCKS):  # the fan sees the electronics variant of every block
        assert f"Block {b} variant 0" in html_six and f"Block {b} variant 1" not in html_six
    # Only the chosen variants' products were decoded: 4 per block, none of the other variants'.
    shown = {pk for b in range(BLOCKS) for pk in (products[b % len(products):][:4] or products[:4])}
    assert {pk for ids in decoded for pk in ids} == shown and sum(map(len, decoded)) == 4 * BLOCKS
    # ... and together, in one look-up, as on a page without personalized blocks.
    assert len(decoded) == 1
    # The site is looked up once per request (Wagtail keeps it on the request).
    assert sum('"wagtailcore_site"' in sql for sql in sqls) <= 1


def test_the_page_pre_pass_chooses_every_block_without_rendering(client, page):
    products = list(ProductPage.objects.live().order_by("pk").values_list("pk", flat=True))
    images = list(get_image_model().objects.order_by("pk").values_list("pk", flat=True))
    page.body = body(3, products, images)
    page.save_revision().publish()
    make_fan(FAN)
    consent_cookies(client, FAN)
    request = client.get(page.url).wsgi_request
    decided = decide_page(page, request)
    assert [block_id for block_id, _ in decided.choices] == [child.id for child in page.body]
    assert all(choice.label.endswith("variant 0") for _, choice in decided.choices)
    assert decide_page(page, request) is decided  # memoised on the request


def test_carousels_of_editors_sources_never_resolve_the_visitor(client, page):
    products = list(ProductPage.objects.live().order_by("pk"))
    category = products[0].category_id
    carousels = [
        {"type": "product_carousel", "id": _id(), "value": {"heading": "Picked", "source": "manual", "category": None, "tag": "", "count": 2,
         "products": [{"type": "item", "value": p.pk, "id": _id()} for p in products[:2]]}},
        {"type": "product_carousel", "id": _id(), "value": {"heading": "Category", "source": "category", "products": [], "category": category, "tag": "", "count": 2}},
        {"type": "product_carousel", "id": _id(), "value": {"heading": "Tag", "source": "tag", "products": [], "category": None, "tag": "camping", "count": 2}},
    ]
    page.body = carousels
    page.save_revision().publish()
    consent_cookies(client, FAN)
    response = client.get(page.url)
    assert response.content.decode().count("product-card") >= 6
    assert response.wsgi_request.visitor._wrapped is empty  # no profile read, no segments

    trending = {"type": "product_carousel", "id": _id(), "value": {"heading": "Trending", "source": "trending", "products": [], "category": None, "tag": "", "count": 2}}
    page.body = [*carousels, trending]
    page.save_revision().publish()
    assert client.get(page.url).wsgi_request.visitor._wrapped is not empty  # the control: it does read them


def test_a_pages_fragments_are_read_in_one_round_trip(client, use_redis_store, redis_client, personalization):
    personalization(PAGE_CACHE_SECONDS=0)  # the page cache would serve the whole page instead
    cache.clear()
    landing = LandingPage(title="Fragments", slug="fragments-at-once", body=[])
    HomePage.objects.get().add_child(instance=landing)
    heroes = [
        {"type": "personalized", "id": _id(), "value": {"variants": [], "fallback": [
            {"type": "hero", "id": _id(), "value": {"heading": f"Cached hero {n}", "subheading": "", "cta_label": "", "cta_url": ""}}]}}
        for n in range(5)
    ]
    landing.body = heroes
    landing.save_revision().publish()
    first = client.get(landing.url).content.decode()  # renders and stores the 5 fragments
    assert all(f"Cached hero {n}" in first for n in range(5))
    fragments.CACHE.forget_local()  # a process that has not read them yet (FRAGMENT_MEMORY_SECONDS)
    redis_client.config_resetstat()
    second = client.get(landing.url).content.decode()
    assert second.count("Cached hero") == first.count("Cached hero")
    stats = redis_client.info("commandstats")
    assert stats.get("cmdstat_mget", {}).get("calls") == 1
    assert "cmdstat_get" not in stats and "cmdstat_set" not in stats  # every fragment came from the MGET


def test_fragments_read_together_fall_back_to_the_outage_cache(settings, use_redis_store):
    # A Redis that refuses connections: the breaker opens, and the page's fragments are kept in
    # this process meanwhile (as a single `get` does).
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REDIS_URL": "redis://127.0.0.1:1/0"}
    fragments.CACHE.outage.clear()
    key = fragments.fragment_key(1, 7, "hero")
    assert fragments.get_many([key]) == {key: None}
    fragments.put(key, "<h1>rendered during the outage</h1>")
    assert fragments.get_many([key, key + "-other"]) == {key: "<h1>rendered during the outage</h1>", key + "-other": None}
    fragments.CACHE.outage.clear()


GRAPHQL_PAGE = """
query Landing($path: String!) {
  page(urlPath: $path) {
    ... on LandingPage {
      body {
        ... on PersonalizedBlock {
          id
          variantLabel
          blocks {
            id
            ... on ProductCarouselBlock { products { id } }
          }
        }
      }
    }
  }
}
"""


def test_graphql_decodes_the_chosen_variants_together_as_ssr_does(client, page, monkeypatch):
    """The headless path pays as SSR does: the page's personalized blocks are chosen together
    (`decide_page`) and their chosen contents decoded in one look-up per block type, so the
    queries of a page do not grow with its number of blocks' variants, and the choices are SSR's."""
    products = list(ProductPage.objects.live().order_by("pk").values_list("pk", flat=True))
    images = list(get_image_model().objects.order_by("pk").values_list("pk", flat=True))
    make_fan(FAN)
    consent_cookies(client, FAN)
    decoded: list[list[int]] = []
    real = ProductChooserBlock.bulk_to_python
    monkeypatch.setattr(ProductChooserBlock, "bulk_to_python", lambda self, values: decoded.append(list(values)) or real(self, values))

    def ask(variants: int) -> tuple[int, dict]:
        page.body = body(variants, products, images)
        page.save_revision().publish()
        query = {"query": GRAPHQL_PAGE, "variables": {"path": page.url}}
        client.post("/graphql/", query, content_type="application/json")  # warm

        def post() -> dict:
            decoded.clear()
            return client.post("/graphql/", query, content_type="application/json").json()

        sqls, answer = steady_queries(post)
        assert "errors" not in answer, answer
        return len(sqls), answer["data"]["page"]["body"]

    two, _ = ask(2)
    six, blocks = ask(6)
    assert six == two, "the query's database work grew with the number of variants"
    assert [b["variantLabel"] for b in blocks] == [f"block {n} variant 0" for n in range(BLOCKS)]
    assert len(decoded) == 1 and sum(map(len, decoded)) == 4 * BLOCKS  # one look-up, only the shown
