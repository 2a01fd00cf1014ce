"""Consent and privacy tests run against both profile stores: the in-process memory store and a
real Redis (pytest-redis), through the site's own endpoints."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tailored import conf
from tailored.profiles.redis import RedisProfileStore
from tests.helpers import experiment_cache_cleared

fresh_experiment_cache = pytest.fixture(autouse=True, name="fresh_experiment_cache")(experiment_cache_cleared)


@pytest.fixture(params=["memory", "redis"])
def backend(request):
    """The site's profile store, on each backend in turn."""
    if request.param == "memory":
        return request.getfixturevalue("memory_store")
    request.getfixturevalue("use_redis_store")
    return conf.get_profile_store()


def redis_keys(store, pattern: str = "*") -> list[str] | None:
    """The Redis keys matching `pattern`; None for the memory store."""
    if not isinstance(store, RedisProfileStore):
        return None
    return sorted(store.client.keys(pattern))


def visitor_id_of(client) -> str | None:
    """The id in the client's signed tl_vid cookie (id:timestamp:signature), if it holds one."""
    cookie = client.cookies.get("tl_vid")
    return cookie.value.split(":")[0] if cookie is not None and cookie.value else None


def answer_consent(client, **headers):
    """Post a JSON answer as tracker.js does; the test client keeps the cookies it sets."""

    def post(analytics: bool, personalization: bool):
        body = json.dumps({"analytics": analytics, "personalization": personalization})
        return client.post("/consent/", body, content_type="application/json", **headers)

    return post


def electronics_views(client, count: int = 3):
    """POST /api/events with `count` electronics product views (the demo's electronics fans
    segment needs three in 24 hours)."""
    now = int(time.time() * 1000)
    events = [
        {"type": "page_view", "id": f"view-{uuid.uuid4().hex}", "ts": now - i, "category": "electronics",
         "url": f"/electronics/{i}/", "page_type": "product", "product_id": i + 1}
        for i in range(count)
    ]
    return client.post("/api/events", json.dumps({"events": events}), content_type="application/json"), events
