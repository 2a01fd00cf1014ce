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


def get(key: str) -> str | None:
    client = _redis()
    if client is None:
        with _lock:
            html = _local.get(key)
            if html is not None:
                _local.move_to_end(key)
            return html
    try:
        return client.get(key)
    except redis_guard.Unavailable:  # skipped by the guard (said once, when it opened): render
        return None
    except Exception as error:  # a cache outage only costs a render
        logger.warning("fragment cache unavailable: %s", error)
        return None


def put(key: str, html: str) -> None:
    client = _redis()
    if client is None:
        with _lock:
            _local[key] = html
            while len(_local) > LOCAL_ENTRIES:
                _local.popitem(last=False)
        return
    try:
        client.set(key, html, ex=TTL_SECONDS)
    except redis_guard.Unavailable:
        return
    except Exception as error:
        logger.warning("fragment cache unavailable: %s", error)


def invalidate_page(page_id: int) -> int:
    """Drop every cached fragment of a page (called when it is published or unpublished)."""
    pattern = f"{PREFIX}{{{page_id}}}:"
    client = _redis()
    if client is None:
        with _lock:
            stale = [key for key in _local if key.startswith(pattern)]
            for key in stale:
                del _local[key]
        return len(stale)
    try:
        keys = list(client.scan_iter(match=pattern + "*", count=500))
        return client.delete(*keys) if keys else 0
    except Exception as error:
        logger.warning("fragment cache unavailable: %s", error)
        return 0
