"""Rendered variant fragments, cached by (page, revision, variant) and dropped when the page is
published (in Redis or in-process, with the outage fallback of tailored.html_cache). Only content
that is the same for everyone who gets the variant is cached: blocks that read the visitor
(messages, carousels of their history, recommendations, surveys) and offers that expire are
always rendered."""

from __future__ import annotations

from .html_cache import HtmlCache

PREFIX = "tl:v1:frag:"
INDEX_PREFIX = "tl:v1:frag-index:"
TTL_SECONDS = 24 * 3600

# A key names its page revision and variant, never content that changes under it: a process may
# keep what it read from Redis (FRAGMENT_MEMORY_SECONDS), and a page's fragments cost no round trip.
CACHE = HtmlCache("fragment", local_entries=2048, memory_setting="FRAGMENT_MEMORY_SECONDS")


def fragment_key(page_id: int, revision_id: int | None, variant_key: str) -> str:
    # The page id is the hash tag, so one page's fragments live together on Redis Cluster.
    return f"{PREFIX}{{{page_id}}}:{revision_id or 0}:{variant_key}"


def get(key: str) -> str | None:
    return CACHE.get(key)


def get_many(keys: list[str]) -> dict[str, str | None]:
    """Several fragments in one round trip (MGET): a page's blocks read theirs together."""
    return CACHE.get_many(keys)


def put(key: str, html: str) -> None:
    CACHE.put(key, html, TTL_SECONDS, index=_index(key[len(PREFIX):key.index("}") + 1]))


def _index(tagged_page_id: str) -> str:
    # The page's fragment keys, in their hash slot (the {page id} tag); outside PREFIX's pattern.
    return f"{INDEX_PREFIX}{tagged_page_id}"


def invalidate_page(page_id: int) -> int:
    """Drop every cached fragment of a page (called when it is published or unpublished)."""
    return CACHE.drop_index(_index(f"{{{page_id}}}"), f"{PREFIX}{{{page_id}}}:")
