"""Redis profile store. Every key of one visitor shares the hash tag `{visitor}`, so the same
code runs on Redis Cluster; reads and writes are one pipelined round trip each.

Keys (all expire after the retention period, renewed on every write):
    tl:v1:{vid}:p      hash   page_views
    tl:v1:{vid}:seen   zset   members "first"/"last" scored by epoch seconds (ZADD LT/GT keeps min/max)
    tl:v1:{vid}:cv     hash   "<category>|<epoch hour>" -> views in that hour
    tl:v1:{vid}:items  list   most recent item ids, newest first, capped
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis

from personalization.core.counters import RECENT_ITEMS, delta_for
from personalization.core.types import Event, Profile, hour_bucket

from .base import HOURLY_BUCKETS_KEPT

KEY_PREFIX = "tl:v1:"
SUFFIXES = ("p", "seen", "cv", "items")


def visitor_keys(visitor_id: str) -> dict[str, str]:
    return {suffix: f"{KEY_PREFIX}{{{visitor_id}}}:{suffix}" for suffix in SUFFIXES}


class RedisProfileStore:
    def __init__(self, client: redis.Redis, retention_seconds: int):
        self.client = client
        self.retention_seconds = retention_seconds

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RedisProfileStore:
        url = settings["REDIS_URL"]
        if not url:
            raise ValueError("PERSONALIZATION['REDIS_URL'] is required by RedisProfileStore")
        # Short timeouts: a page must still render (with fallbacks) when Redis is slow or down.
        client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        return cls(client, retention_seconds=int(settings["RETENTION_DAYS"] * 86400))

    def get(self, visitor_id: str, now: float) -> Profile:
        return self.get_many([visitor_id], now)[visitor_id]

    def get_many(self, visitor_ids: Iterable[str], now: float) -> dict[str, Profile]:
        ids = list(dict.fromkeys(visitor_ids))
        pipe = self.client.pipeline(transaction=False)
        for visitor_id in ids:
            keys = visitor_keys(visitor_id)
            pipe.hget(keys["p"], "page_views")
            pipe.zmscore(keys["seen"], ["first", "last"])
            pipe.hgetall(keys["cv"])
            pipe.lrange(keys["items"], 0, RECENT_ITEMS - 1)
        replies = pipe.execute()
        profiles, stale = {}, {}
        for i, visitor_id in enumerate(ids):
            page_views, seen, cv, items = replies[4 * i : 4 * i + 4]
            category_views, stale_fields = _parse_category_views(cv, now)
            if stale_fields:
                stale[visitor_keys(visitor_id)["cv"]] = stale_fields
            profiles[visitor_id] = Profile(
                visitor_id=visitor_id,
                page_views=int(page_views or 0),
                first_seen=seen[0],
                last_seen=seen[1],
                category_views=category_views,
                recent_items=tuple(items),
            )
        if stale:
            self._prune(stale)
        return profiles

    def record(self, visitor_id: str, events: Sequence[Event]) -> None:
        delta = delta_for(events)
        if delta.is_empty:
            return
        keys = visitor_keys(visitor_id)
        pipe = self.client.pipeline(transaction=True)
        if delta.page_views:
            pipe.hincrby(keys["p"], "page_views", delta.page_views)
        pipe.zadd(keys["seen"], {"first": delta.first_ts}, lt=True)
        pipe.zadd(keys["seen"], {"last": delta.last_ts}, gt=True)
        for (category, bucket), count in delta.category_hours.items():
            pipe.hincrby(keys["cv"], f"{category}|{bucket}", count)
        if delta.items:
            pipe.lpush(keys["items"], *delta.items)
            pipe.ltrim(keys["items"], 0, RECENT_ITEMS - 1)
        for key in keys.values():
            pipe.expire(key, self.retention_seconds)
        pipe.execute()

    def erase(self, visitor_id: str) -> None:
        self.client.delete(*visitor_keys(visitor_id).values())

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def _prune(self, stale: dict[str, list[str]]) -> None:
        """Drop hour buckets that fell out of the window; rare (once an hour per active visitor)."""
        pipe = self.client.pipeline(transaction=False)
        for key, fields in stale.items():
            pipe.hdel(key, *fields)
        pipe.execute()


def _parse_category_views(raw: dict[str, str], now: float) -> tuple[dict[str, dict[int, int]], list[str]]:
    oldest = hour_bucket(now) - HOURLY_BUCKETS_KEPT + 1
    views: dict[str, dict[int, int]] = {}
    stale: list[str] = []
    for name, count in raw.items():
        category, _, bucket_text = name.rpartition("|")
        bucket = int(bucket_text)
        if bucket < oldest:
            stale.append(name)
        else:
            views.setdefault(category, {})[bucket] = int(count)
    return views, stale
