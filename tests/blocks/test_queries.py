"""No N+1: rendering a page costs the same number of queries whatever the number of products its
carousels and recommendations show (issue 5)."""

from __future__ import annotations

import copy
import time
import uuid

import pytest
from django.core.cache import cache

from cms.models import HomePage, LandingPage, ProductPage
from tailored import conf
from tailored.core.types import Event
from tests.helpers import consent_cookies, steady_queries

pytestmark = pytest.mark.django_db

FAN = "e" * 32


@pytest.fixture(autouse=True)
def _store(memory_store):
    cache.clear()
    yield memory_store
    cache.clear()


def history(visitor_id: str, products: list[ProductPage]) -> None:
    """Product views (newest last) that make the visitor an electronics fan with a recent history."""
    now = time.time()
    events = [
        Event(f"view-{p.pk}", "page_view", ts=now - 60 + i, category=p.category.slug, item=str(p.pk), attrs={"page_type": "product"})
        for i, p in enumerate(products)
    ]
    conf.get_profile_store().record(visitor_id, events, now)


def resize(data, n: int, product_ids: list[int]):
    """Every product list in a raw stream shows n products: counts, and manual picks. Variants for
    a time of day or weekday are left out: one that starts between the two measured requests
    would show other content, and other queries (CI once measured an evening carousel only once)."""
    if isinstance(data, list):
        return [resize(item, n, product_ids) for item in data if not _timed_variant(item)]
    if not isinstance(data, dict):
        return data
    data = {key: resize(value, n, product_ids) for key, value in data.items()}
    if data.get("type") in ("product_carousel", "recommendations"):
        value = data["value"]
        value["count"] = n
        if value.get("source") == "manual":
            value["products"] = [{"type": "item", "value": pk, "id": str(uuid.uuid4())} for pk in product_ids[:n]]
    return data


def _timed_variant(item) -> bool:
    value = item.get("value") if isinstance(item, dict) and item.get("type") == "item" else None
    return isinstance(value, dict) and bool(value.get("dayparts") or value.get("weekdays"))


def queries_for(client, page, raw_body, n: int, product_ids: list[int], url: str) -> list[str]:
    """The SQL of a steady-state request for the page with n products in every list."""
    page.body = resize(copy.deepcopy(raw_body), n, product_ids)
    page.save()
    client.get(url)  # warm: renditions, the site root, the segment cache
    queries, status = steady_queries(lambda: client.get(url).status_code)
    assert status == 200
    return queries


@pytest.mark.parametrize("visitor", ["anonymous", "fan"])
def test_the_homepage_has_no_n_plus_one(client, visitor):
    electronics = list(ProductPage.objects.live().filter(category__slug="electronics").order_by("pk"))
    ids = list(ProductPage.objects.live().order_by("pk").values_list("pk", flat=True))
    if visitor == "fan":
        history(FAN, electronics)
        consent_cookies(client, FAN)
    home = HomePage.objects.get()
    raw = list(home.body.raw_data)
    few, many = queries_for(client, home, raw, 2, ids, "/"), queries_for(client, home, raw, 8, ids, "/")
    assert len(few) == len(many), (few, many)


def test_every_product_block_together_has_no_n_plus_one(client):
    products = list(ProductPage.objects.live().order_by("pk"))
    ids = [p.pk for p in products]
    history(FAN, products[:10])
    consent_cookies(client, FAN)
    electronics = products[0].category_id
    sections = [
        {"type": "product_carousel", "value": {"heading": "Picked", "source": "manual", "products": [], "category": None, "tag": "", "count": 2}},
        {"type": "product_carousel", "value": {"heading": "Category", "source": "category", "products": [], "category": electronics, "tag": "", "count": 2}},
        {"type": "product_carousel", "value": {"heading": "Tag", "source": "tag", "products": [], "category": None, "tag": "camping", "count": 2}},
        {"type": "product_carousel", "value": {"heading": "Recent", "source": "recently_viewed", "products": [], "category": None, "tag": "", "count": 2}},
        {"type": "product_carousel", "value": {"heading": "Trending", "source": "trending", "products": [], "category": None, "tag": "", "count": 2}},
        {"type": "recommendations", "value": {"heading": "For you", "strategy": "recommended", "count": 2, "ask_feedback": True}},
        {"type": "message", "value": {"text": "{last_viewed_product} / {favourite_category}", "first_name_fallback": "", "last_viewed_product_fallback": "", "favourite_category_fallback": "", "link_label": "", "url": ""}},
    ]
    personalized = {"type": "personalized", "value": {"variants": [], "fallback": copy.deepcopy(sections)}}
    home = HomePage.objects.get()
    landing = LandingPage(title="Every block", slug="every-block", body=[])
    home.add_child(instance=landing)
    raw = [*sections, personalized]
    few, many = queries_for(client, landing, raw, 2, ids, landing.url), queries_for(client, landing, raw, 8, ids, landing.url)
    assert len(few) == len(many), (few, many)
    html = client.get(landing.url).content.decode()
    assert html.count("product-card") >= 8 * 5
