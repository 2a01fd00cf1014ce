"""Rendered HTML by key, for the fragment cache (tailored.fragments) and the page cache
(tailored.blocks.page_cache): in Redis when the profile store is Redis (shared by every web
worker), else in an in-process LRU.

While Redis is unavailable, entries go to a second in-process LRU instead, so pages during an
outage render as fast as with Redis, not everything from scratch; it is emptied at the first
Redis answer after the outage. A cache failure only ever costs a render.

A cache whose keys never name changing content (the fragments': page, revision, variant) may also
keep what it read from or wrote to Redis in the process for as long as its `memory_setting` says,
so a page's fragments cost no round trip while they are in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from tailored import conf, redis_guard

logger = logging.getLogger(__name__)


class HtmlCache:
    def __init__(self, name: str, local_entries: int, memory_setting: str | None = None):
        self.name, self.local_entries, self.memory_setting = name, local_entries, memory_setting
        self.local: OrderedDict[str, str] = OrderedDict()  # the memory store's cache
        self.outage: OrderedDict[str, str] = OrderedDict()  # Redis's stand-in while it is away
        self.memory: OrderedDict[str, tuple[float, str]] = OrderedDict()  # Redis's entries: (until, html)
        self._lock = threading.Lock()

    @staticmethod
    def redis():
        """The profile store's Redis client, or None with the memory store."""
        return getattr(conf.get_profile_store(), "client", None)

    def _local_get(self, cache: OrderedDict[str, str], key: str) -> str | None:
        with self._lock:
            html = cache.get(key)
            if html is not None:
                cache.move_to_end(key)
            return html

    def _local_put(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        with self._lock:
            cache[key] = value
            cache.move_to_end(key)  # a key written again is the newest, not evicted first
            while len(cache) > self.local_entries:
                cache.popitem(last=False)

    def get(self, key: str) -> str | None:
        return self.get_many([key])[key]

    def get_many(self, keys: list[str]) -> dict[str, str | None]:
        """Several entries in one round trip (MGET); none for the entries still in memory."""
        if not keys:
            return {}
        client = self.redis()
        if client is None:
            return {key: self._local_get(self.local, key) for key in keys}
        remembered = self._remembered(keys)
        missing = [key for key in keys if key not in remembered]
        if not missing:
            return remembered
        try:
            found = redis_guard.mget(client, missing)  # split by slot on a cluster
        except Exception as error:
            if not isinstance(error, redis_guard.Unavailable):  # the guard said so once, when it opened
                logger.warning("%s cache unavailable: %s", self.name, error)
            return {key: remembered[key] if key in remembered else self._local_get(self.outage, key) for key in keys}
        if self.outage:
            with self._lock:
                self.outage.clear()
        # GET and MGET answer alike: bytes unless the client decodes responses.
        read = {key: html.decode() if isinstance(html, bytes) else html for key, html in zip(missing, found, strict=True)}
        self._remember({key: html for key, html in read.items() if html is not None})
        return {key: remembered[key] if key in remembered else read[key] for key in keys}

    def put(self, key: str, html: str, ttl_seconds: int, index: str | None = None) -> None:
        """Keep an entry; `index` names a Redis set of the keys to drop together (`drop_index`),
        in the key's hash slot (the same {tag}) on a cluster."""
        client = self.redis()
        if client is None:
            self._local_put(self.local, key, html)
            return
        try:
            if index is None:
                client.set(key, html, ex=ttl_seconds)
            else:
                pipe = client.pipeline(transaction=False)
                pipe.set(key, html, ex=ttl_seconds).sadd(index, key).expire(index, ttl_seconds)
                pipe.execute()
        except Exception as error:
            if not isinstance(error, redis_guard.Unavailable):  # the guard said so once, when it opened
                logger.warning("%s cache unavailable: %s", self.name, error)
            self._local_put(self.outage, key, html)
            return
        self._remember({key: html})

    def _memory_seconds(self) -> float:
        return float(conf.get(self.memory_setting)) if self.memory_setting else 0.0

    def _remembered(self, keys: list[str]) -> dict[str, str]:
        """The entries of `keys` this process read from or wrote to Redis less than the memory
        setting ago (none when it is 0)."""
        if not self.memory or self._memory_seconds() <= 0:
            return {}
        now, found = time.monotonic(), {}
        with self._lock:
            for key in keys:
                entry = self.memory.get(key)
                if entry is None:
                    continue
                if entry[0] > now:
                    found[key] = entry[1]
                else:
                    del self.memory[key]
        return found

    def _remember(self, entries: dict[str, str]) -> None:
        seconds = self._memory_seconds()
        if not entries or seconds <= 0:
            return
        until = time.monotonic() + seconds
        for key, html in entries.items():
            self._local_put(self.memory, key, (until, html))

    def drop_index(self, index: str, prefix: str) -> int:
        """Drop the entries `put` listed in `index`, in Redis, and every entry of this process
        whose key starts with `prefix`: a few commands, never a SCAN of all of Redis."""
        with self._lock:
            stale = [(cache, key) for cache in (self.local, self.outage, self.memory) for key in cache if key.startswith(prefix)]
            for cache, key in stale:
                del cache[key]
        client = self.redis()
        if client is None:
            return len(stale)
        try:
            keys = list(client.smembers(index))
            dropped = sum(client.delete(*keys[start:start + 500]) for start in range(0, len(keys), 500))
            client.delete(index)
            return dropped
        except Exception as error:
            logger.warning("%s cache unavailable, entries expire on their own: %s", self.name, error)
            return 0

    def forget_local(self) -> None:
        """Empty this process's LRUs."""
        with self._lock:
            self.local.clear()
            self.outage.clear()
            self.memory.clear()
