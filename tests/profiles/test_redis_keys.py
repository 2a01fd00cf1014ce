"""Redis specifics: keys share one hash tag per visitor and expire with the retention period."""

from personalization.core.types import Event
from personalization.profiles.redis import RedisProfileStore

RETENTION = 90 * 86400


def test_every_key_of_a_visitor_shares_its_hash_tag_and_expires(redis_client):
    store = RedisProfileStore(redis_client, retention_seconds=RETENTION)
    store.record("abc", [Event("e1", "page_view", ts=1_764_000_000.0, category="books", item="7")])
    keys = sorted(redis_client.keys("*"))
    assert keys == ["tl:v1:{abc}:cv", "tl:v1:{abc}:items", "tl:v1:{abc}:p", "tl:v1:{abc}:seen"]
    for key in keys:
        assert 0 < redis_client.ttl(key) <= RETENTION
