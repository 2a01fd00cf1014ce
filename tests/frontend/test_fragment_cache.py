"""Variant fragments are cached in Redis by page, revision and variant, and dropped on publish; a
web process keeps the ones it read or wrote in memory for FRAGMENT_MEMORY_SECONDS."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from cms.models import HomePage
from tailored import fragments
from tailored.fragments import PREFIX
from tests.helpers import consent_cookies, make_fan, with_locale_middleware

pytestmark = pytest.mark.django_db

ELECTRONICS_HERO = "The latest in electronics, picked for you"
ELECTRONICS_KEY_END = f":0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01@{settings.LANGUAGE_CODE}"  # the variant, in the site's language


def fragment_keys(redis_client, page_id: int) -> set[str]:
    return set(redis_client.scan_iter(match=f"{PREFIX}{{{page_id}}}:*"))


def test_a_variant_is_rendered_once_then_served_from_redis(client, use_redis_store, redis_client, personalization):
    # The page cache would serve the whole page, not render it; the process's memory its fragments.
    personalization(PAGE_CACHE_SECONDS=0, FRAGMENT_MEMORY_SECONDS=0)
    home = HomePage.objects.get()
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    first = client.get("/").content.decode()
    keys = fragment_keys(redis_client, home.pk)
    variant_key = next(k for k in keys if k.endswith(ELECTRONICS_KEY_END))
    assert f":{home.live_revision_id}:" in variant_key
    assert ELECTRONICS_HERO in redis_client.get(variant_key)
    redis_client.set(variant_key, redis_client.get(variant_key).replace(ELECTRONICS_HERO, "Served from the cache"))
    second = client.get("/").content.decode()
    assert "Served from the cache" in second and ELECTRONICS_HERO not in second
    assert first.count('data-tl-variant="') == second.count('data-tl-variant="')


def _mget_calls(redis_client) -> int:
    return int(redis_client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))


def _edit_cached_hero(redis_client, page_id: int, text: str) -> None:
    """Change the electronics hero's fragment in Redis, as if another process had cached it so."""
    key = next(k for k in fragment_keys(redis_client, page_id) if k.endswith(ELECTRONICS_KEY_END))
    redis_client.set(key, redis_client.get(key).replace(ELECTRONICS_HERO, text))


def test_a_process_serves_the_fragments_it_has_read_from_memory_without_asking_redis(
    client, use_redis_store, redis_client, personalization,
):
    personalization(PAGE_CACHE_SECONDS=0)
    home = HomePage.objects.get()
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    first = client.get("/").content.decode()  # rendered, written to Redis and kept in memory
    _edit_cached_hero(redis_client, home.pk, "Changed in Redis")
    reads = _mget_calls(redis_client)
    second = client.get("/").content.decode()
    assert ELECTRONICS_HERO in second and "Changed in Redis" not in second
    assert _mget_calls(redis_client) == reads  # not one fragment read from Redis
    assert first.count('data-tl-variant="') == second.count('data-tl-variant="')
    fragments.CACHE.forget_local()  # a process that has not read them yet: from Redis
    assert "Changed in Redis" in client.get("/").content.decode()


def test_a_kept_fragment_is_read_from_redis_again_after_the_memory_setting(
    client, use_redis_store, redis_client, personalization,
):
    # 2 s: the page and the edit must fit in it however loaded the machine (0.3 s did not, once).
    personalization(PAGE_CACHE_SECONDS=0, FRAGMENT_MEMORY_SECONDS=2)
    home = HomePage.objects.get()
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    client.get("/")
    _edit_cached_hero(redis_client, home.pk, "Changed in Redis")
    assert ELECTRONICS_HERO in client.get("/").content.decode()
    time.sleep(2.1)
    assert "Changed in Redis" in client.get("/").content.decode()


def test_publishing_serves_the_new_revision_in_a_process_that_kept_the_old_fragments(client, use_redis_store, redis_client):
    home = HomePage.objects.get()
    client.get("/")
    assert fragments.CACHE.memory  # the fallback's fragments, kept
    kept = dict(fragments.CACHE.memory)
    body = home.body.raw_data
    body[0]["value"]["fallback"][0]["value"]["heading"] = "Published elsewhere"
    home.body = body
    home.save_revision().publish()
    fragments.CACHE.memory.update(kept)  # as in another process, which the publish did not reach
    assert "Published elsewhere" in client.get("/").content.decode()


def test_publishing_drops_the_pages_fragments(client, use_redis_store, redis_client):
    home = HomePage.objects.get()
    client.get("/")
    assert fragment_keys(redis_client, home.pk)
    body = home.body.raw_data
    body[0]["value"]["fallback"][0]["value"]["heading"] = "A brand new fallback"
    home.body = body
    redis_client.config_resetstat()
    home.save_revision().publish()
    assert "cmdstat_scan" not in redis_client.info("commandstats")  # the page's own keys, not a walk of all of Redis
    assert not fragment_keys(redis_client, home.pk)
    assert not [key for key in fragments.CACHE.memory if f"{{{home.pk}}}" in key]  # nor kept in memory
    assert "A brand new fallback" in client.get("/").content.decode()


def test_sections_that_read_the_visitor_are_never_cached(client, use_redis_store, redis_client):
    from tailored.blocks.content import ContentStreamBlock
    from tailored.blocks.personalized import cacheable

    home = HomePage.objects.get()
    client.get("/")
    library = ContentStreamBlock().child_blocks
    per_visitor = {"message", "product_carousel", "recommendations", "survey", "offer"}
    assert not [name for name in per_visitor if cacheable(library[name])]
    assert all(cacheable(library[name]) for name in ("hero", "rich_text", "cta", "image_text"))
    cached = "".join(redis_client.get(k) for k in fragment_keys(redis_client, home.pk))
    assert "data-tl-feedback" not in cached  # recommendation cards carry feedback buttons


def test_no_shared_cache_may_store_a_personalized_page(client):
    response = client.get("/")
    assert "private" in response["Cache-Control"]
    assert {"Cookie", "User-Agent"} <= {v.strip() for v in response["Vary"].split(",")}


@pytest.mark.parametrize("value", ["60", -1, None, True])
def test_a_memory_setting_that_is_not_seconds_is_e013(settings, value):
    from tailored.checks import check_memory_seconds

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "FRAGMENT_MEMORY_SECONDS": value}
    assert [error.id for error in check_memory_seconds(None)] == ["tailored.E013"]


def test_zero_reads_every_fragment_from_redis_even_those_kept_before(client, use_redis_store, redis_client, personalization):
    personalization(PAGE_CACHE_SECONDS=0)
    home = HomePage.objects.get()
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    client.get("/")  # kept in memory at the default
    _edit_cached_hero(redis_client, home.pk, "Changed in Redis")
    personalization(PAGE_CACHE_SECONDS=0, FRAGMENT_MEMORY_SECONDS=0)
    assert "Changed in Redis" in client.get("/").content.decode()


def test_kept_fragments_are_served_while_redis_is_down(settings, use_redis_store):
    key, other = fragments.fragment_key(1, 7, "hero"), fragments.fragment_key(1, 7, "cta")
    fragments.put(key, "<h1>kept</h1>")  # written to the live Redis, so kept in memory
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REDIS_URL": "redis://127.0.0.1:1/0"}
    assert fragments.get_many([key, other]) == {key: "<h1>kept</h1>", other: None}


def test_a_sites_own_block_is_never_cached_whatever_its_name():
    """Only Tailored's own content blocks are known to show everyone the same: a site's block
    called "hero", or a subclass of Tailored's, may read the visitor."""
    from wagtail import blocks

    from tailored.blocks.content import ContentStreamBlock, HeroBlock
    from tailored.blocks.page_cache import part_of
    from tailored.blocks.personalized import Choice, _variant_key

    class GreetingHero(HeroBlock):
        pass

    raw = {"heading": "Hello"}
    assert part_of(HeroBlock(), raw, None) == ""
    for own in (GreetingHero(), blocks.StructBlock([("heading", blocks.CharBlock())])):
        assert part_of(own, raw, None) is None
        stream = ContentStreamBlock(local_blocks=[("hero", own)])
        content = stream.to_python([{"type": "hero", "value": raw, "id": "h1"}])
        assert _variant_key(1, 1, Choice("fallback", "Everyone else", content)) is None
    content = ContentStreamBlock().to_python([{"type": "hero", "value": raw, "id": "h1"}])
    assert _variant_key(1, 1, Choice("fallback", "Everyone else", content)) is not None


def test_each_language_has_its_own_fragments(client, use_redis_store, redis_client, personalization, settings):
    """A block's template may translate its words: the French fragment is never served in English."""
    personalization(PAGE_CACHE_SECONDS=0, FRAGMENT_MEMORY_SECONDS=0)
    with_locale_middleware(settings)
    home = HomePage.objects.get()
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    client.get("/", HTTP_ACCEPT_LANGUAGE="fr")
    french = next(k for k in fragment_keys(redis_client, home.pk) if k.endswith(":0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01@fr"))
    redis_client.set(french, redis_client.get(french).replace(ELECTRONICS_HERO, "Le meilleur de l'électronique"))
    assert "Le meilleur" in client.get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    english = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ELECTRONICS_HERO in english and "Le meilleur" not in english
