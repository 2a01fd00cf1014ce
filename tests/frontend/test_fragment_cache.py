"""Variant fragments are cached in Redis by page, revision and variant, and dropped on publish."""

from __future__ import annotations

import pytest

from cms.models import HomePage
from tailored.fragments import PREFIX
from tests.helpers import consent_cookies, make_fan

pytestmark = pytest.mark.django_db

ELECTRONICS_HERO = "The latest in electronics, picked for you"


def fragment_keys(redis_client, page_id: int) -> set[str]:
    return set(redis_client.scan_iter(match=f"{PREFIX}{{{page_id}}}:*"))


def test_a_variant_is_rendered_once_then_served_from_redis(client, use_redis_store, redis_client, personalization):
    personalization(PAGE_CACHE_SECONDS=0)  # the page cache would serve the whole page, not render it
    home = HomePage.objects.get()
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    first = client.get("/").content.decode()
    keys = fragment_keys(redis_client, home.pk)
    variant_key = next(k for k in keys if k.endswith(":0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01"))
    assert f":{home.live_revision_id}:" in variant_key
    assert ELECTRONICS_HERO in redis_client.get(variant_key)
    redis_client.set(variant_key, redis_client.get(variant_key).replace(ELECTRONICS_HERO, "Served from the cache"))
    second = client.get("/").content.decode()
    assert "Served from the cache" in second and ELECTRONICS_HERO not in second
    assert first.count('data-tl-variant="') == second.count('data-tl-variant="')


def test_publishing_drops_the_pages_fragments(client, use_redis_store, redis_client):
    home = HomePage.objects.get()
    client.get("/")
    assert fragment_keys(redis_client, home.pk)
    body = home.body.raw_data
    body[0]["value"]["fallback"][0]["value"]["heading"] = "A brand new fallback"
    home.body = body
    home.save_revision().publish()
    assert not fragment_keys(redis_client, home.pk)
    assert "A brand new fallback" in client.get("/").content.decode()


def test_sections_that_read_the_visitor_are_never_cached(client, use_redis_store, redis_client):
    from tailored.blocks.personalized import CACHEABLE_BLOCKS

    home = HomePage.objects.get()
    client.get("/")
    per_visitor = {"message", "product_carousel", "recommendations", "survey", "offer"}
    assert not per_visitor & CACHEABLE_BLOCKS
    cached = "".join(redis_client.get(k) for k in fragment_keys(redis_client, home.pk))
    assert "data-tl-feedback" not in cached  # recommendation cards carry feedback buttons


def test_no_shared_cache_may_store_a_personalized_page(client):
    response = client.get("/")
    assert "private" in response["Cache-Control"]
    assert {"Cookie", "User-Agent"} <= {v.strip() for v in response["Vary"].split(",")}
