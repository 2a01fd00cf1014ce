"""Rendered HTML by key, for the fragment cache (tailored.fragments) and the page cache
(tailored.blocks.page_cache): in Redis when the profile store is Redis (shared by every web
worker), else in an in-process LRU.

While Redis is unavailable, entries go to a second in-process LRU instead, so pages during an
outage render as fast as with Redis, not everything from scratch; it is emptied at the first
Redis answer after the outage. A cache failure only ever costs a render.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from tailored import conf, redis_guard

logger = logging.getLogger(__name__)


class HtmlCache:
    def __init__(self, name: str, local_entries: int):
        self.name, self.local_entries = name, local_entries
        self.local: OrderedDict[str, str] = OrderedDict()  # the memory store's cache
        self.outage: OrderedDict[str, str] = OrderedDict()  # Redis's stand-in while it is away
        self._lock = threading.Lock()

    @staticmethod
    def _redis():
        return getattr(conf.get_profile_store(), "client", None)

    def _local_get(self, cache: OrderedDict[str, str], key: str) -> str | None:
        with self._lock:
            html = cache.get(key)
            if html is not None:
                cache.move_to_end(key)
            return html

    def _local_put(self, cache: OrderedDict[str, str], key: str, html: str) -> None:
        with self._lock:
            cache[key] = html
            while len(cache) > self.local_entries:
                cache.popitem(last=False)

    def get(self, key: str) -> str | None:
        return self.get_many([key])[key]

    def get_many(self, keys: list[str]) -> dict[str, str | None]:
        """Several entries in one round trip (MGET)."""
        if not keys:
            return {}
        client = self._redis()
        if client is None:
            return {key: self._local_get(self.local, key) for key in keys}
        try:
            found = redis_guard.mget(client, keys)  # split by slot on a cluster
        except redis_guard.Unavailable:  # skipped by the guard (said once, when it opened)
            return {key: self._local_get(self.outage, key) for key in keys}
        except Exception as error:
            logger.warning("%s cache unavailable: %s", self.name, error)
            return {key: self._local_get(self.outage, key) for key in keys}
        if self.outage:
            with self._lock:
                self.outage.clear()
        # GET and MGET answer alike: bytes unless the client decodes responses.
        return {key: html.decode() if isinstance(html, bytes) else html for key, html in zip(keys, found, strict=True)}

    def put(self, key: str, html: str, ttl_seconds: int) -> None:
        client = self._redis()
        if client is None:
            self._local_put(self.local, key, html)
            return
        try:
            client.set(key, html, ex=ttl_seconds)
        except redis_guard.Unavailable:
            self._local_put(self.outage, key, html)
        except Exception as error:
            logger.warning("%s cache unavailable: %s", self.name, error)
            self._local_put(self.outage, key, html)

    def drop_prefix(self, prefix: str) -> int:
        """Drop every entry whose key starts with `prefix`, in this process and in Redis."""
        with self._lock:
            stale = [(cache, key) for cache in (self.local, self.outage) for key in cache if key.startswith(prefix)]
            for cache, key in stale:
                del cache[key]
        client = self._redis()
        if client is None:
            return len(stale)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            return sum(client.delete(*keys[start:start + 500]) for start in range(0, len(keys), 500))
        except Exception as error:
            logger.warning("%s cache unavailable, entries expire on their own: %s", self.name, error)
            return 0

    def forget_local(self) -> None:
        """Empty this process's LRUs."""
        with self._lock:
            self.local.clear()
            self.outage.clear()
