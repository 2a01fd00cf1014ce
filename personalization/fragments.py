"""Rendered variant fragments, cached by (page, revision, variant) and dropped when the page is
published. In Redis when the profile store is Redis (shared by every web worker), else in a small
in-process LRU. Only content that is the same for everyone who gets the variant is cached: blocks
that read the visitor (messages, carousels of their history, recommendations, surveys) and offers
that expire are always rendered."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from tailored import conf, redis_guard

logger = logging.getLogger(__name__)

PREFIX = "tl:v1:frag:"
TTL_SECONDS = 24 * 3600
LOCAL_ENTRIES = 2048

_local: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


def fragment_key(page_id: int, revision_id: int | None, variant_key: str) -> str:
    # The page id is the hash tag, so one page's fragments live together on Redis Cluster.
    return f"{PREFIX}{{{page_id}}}:{revision_id or 0}:{variant_key}"


def _redis():
    return getattr(conf.get_profile_store(), "client", None)


# While Redis is unavailable, fragments are cached in this process instead: pages then render as
# fast as with Redis, not every variant from scratch. Emptied at the first Redis answer after it.
_outage: OrderedDict[str, str] = OrderedDict()


def _local_get(cache: OrderedDict[str, str], key: str) -> str | None:
    with _lock:
        html = cache.get(key)
        if html is not None:
            cache.move_to_end(key)
        return html


def _local_put(cache: OrderedDict[str, str], key: str, html: str) -> None:
    with _lock:
        cache[key] = html
        while len(cache) > LOCAL_ENTRIES:
            cache.popitem(last=False)


def get(key: str) -> str | None:
    client = _redis()
    if client is None:
        return _local_get(_local, key)
    try:
        html = client.get(key)
    except redis_guard.Unavailable:  # skipped by the guard (said once, when it opened)
        return _local_get(_outage, key)
    except Exception as error:  # a cache outage only costs a render
        logger.warning("fragment cache unavailable: %s", error)
        return _local_get(_outage, key)
    if _outage:
        with _lock:
            _outage.clear()
    return html


def get_many(keys: list[str]) -> dict[str, str | None]:
    """Several fragments in one round trip (MGET): a page's blocks read theirs together, not
    one GET after another. Same outage behaviour as `get`: the in-process LRU answers instead."""
    if not keys:
        return {}
    client = _redis()
    if client is None:
        return {key: _local_get(_local, key) for key in keys}
    try:
        found = client.mget(keys)
    except redis_guard.Unavailable:  # skipped by the guard (said once, when it opened)
        return {key: _local_get(_outage, key) for key in keys}
    except Exception as error:  # a cache outage only costs a render
        logger.warning("fragment cache unavailable: %s", error)
        return {key: _local_get(_outage, key) for key in keys}
    if _outage:
        with _lock:
            _outage.clear()
    return {key: _text(html) for key, html in zip(keys, found, strict=True)}


def _text(html: str | bytes | None) -> str | None:
    # GET and MGET answer alike: bytes unless the client decodes responses.
    return html.decode() if isinstance(html, bytes) else html


def put(key: str, html: str) -> None:
    client = _redis()
    if client is None:
        _local_put(_local, key, html)
        return
    try:
        client.set(key, html, ex=TTL_SECONDS)
    except redis_guard.Unavailable:
        _local_put(_outage, key, html)
    except Exception as error:
        logger.warning("fragment cache unavailable: %s", error)
        _local_put(_outage, key, html)


def invalidate_page(page_id: int) -> int:
    """Drop every cached fragment of a page (called when it is published or unpublished)."""
    pattern = f"{PREFIX}{{{page_id}}}:"
    with _lock:
        stale = [(cache, key) for cache in (_local, _outage) for key in cache if key.startswith(pattern)]
        for cache, key in stale:
            del cache[key]
    client = _redis()
    if client is None:
        return len(stale)
    try:
        keys = list(client.scan_iter(match=pattern + "*", count=500))
        return client.delete(*keys) if keys else 0
    except Exception as error:
        logger.warning("fragment cache unavailable: %s", error)
        return 0
