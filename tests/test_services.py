"""resolve_visitor: one resolution per request; pages survive a dead Redis."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from tailored import services
from tailored.segments import segment_cache
from tests.conftest import DESKTOP_UA
from tests.helpers import CONSENT_GRANTED, make_fan, signed_visitor_id

pytestmark = pytest.mark.django_db

VISITOR = "d" * 32


def request_for(visitor_id=VISITOR, **meta):
    request = RequestFactory().get("/", HTTP_USER_AGENT=DESKTOP_UA, **meta)
    request.COOKIES.update({"tl_consent": CONSENT_GRANTED, "tl_vid": signed_visitor_id(visitor_id)})
    return request


def test_resolution_is_cached_on_the_request(memory_store):
    request = request_for()
    assert services.resolve_visitor(request) is services.resolve_visitor(request)


def test_a_fan_is_in_the_fan_segment(use_redis_store):
    make_fan(VISITOR)
    visitor = services.resolve_visitor(request_for())
    assert visitor.id == VISITOR
    assert "electronics-fans" in visitor.segments
    assert visitor.context.device == "desktop"


def test_a_malformed_visitor_cookie_is_ignored(memory_store):
    request = request_for(visitor_id="../../etc")
    visitor = services.resolve_visitor(request)
    assert visitor.id != "../../etc" and services.VISITOR_ID.match(visitor.id)  # a new visitor


def test_pages_render_with_fallbacks_when_redis_is_down(client, settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
    client.cookies["tl_consent"] = CONSENT_GRANTED
    client.cookies["tl_vid"] = signed_visitor_id(VISITOR)
    response = client.get("/")
    assert response.status_code == 200
    assert "Good things for every day" in response.content.decode()


def test_segment_edits_apply_to_the_next_request(memory_store):
    from tailored.models import Segment

    segment_cache.current()
    Segment.objects.create(name="Desktop", slug="desktop", rule={"field": "context.device", "op": "eq", "value": "desktop"})
    assert "desktop" in services.resolve_visitor(request_for()).segments


def test_an_invalid_rule_cannot_be_saved():
    from django.core.exceptions import ValidationError

    from tailored.models import Segment

    with pytest.raises(ValidationError) as caught:
        Segment.objects.create(name="Bad", slug="bad", rule={"field": "context.device", "op": "eqq", "value": "mobile"})
    assert "$.op: unknown operator 'eqq'" in str(caught.value)


@pytest.mark.parametrize("store_fixture", ["memory_store", "use_redis_store"])
def test_live_count_and_daily_sizes_follow_visitors_events(request, store_fixture, client):
    import json
    import time as clock

    from tailored.core.rules import compile_rule

    request.getfixturevalue(store_fixture)
    mobile_fans = compile_rule({"all": [
        {"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 3},
        {"field": "context.device", "op": "eq", "value": "mobile"},
    ]})
    assert services.live_count(mobile_fans) == (0, 0)
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    for visitor, user_agent in (("1" * 32, iphone), ("2" * 32, DESKTOP_UA)):
        client.cookies["tl_consent"] = CONSENT_GRANTED
        client.cookies["tl_vid"] = signed_visitor_id(visitor)
        events = [{"type": "page_view", "id": f"{visitor[:4]}-{i}", "ts": int(clock.time() * 1000), "category": "electronics"} for i in range(3)]
        response = client.post("/api/events", json.dumps({"events": events}), content_type="application/json", HTTP_USER_AGENT=user_agent)
        assert response.status_code == 202
    assert services.live_count(mobile_fans) == (1, 2)
    # Membership is counted per day from the segments the visitor matched while sending events.
    client.cookies["tl_vid"] = signed_visitor_id("1" * 32)
    client.post("/api/events", json.dumps({"events": [{"type": "page_view", "id": "again", "ts": int(clock.time() * 1000)}]}),
                content_type="application/json", HTTP_USER_AGENT=iphone)
    (day, count), = services.segment_sizes("electronics-fans", days=1)
    assert count == 1
    assert services.segment_sizes("mobile-visitors", days=1)[0][1] == 1


def test_a_page_request_keeps_its_window_sums_and_the_worker_reads_keep_none(use_redis_store, redis_client):
    """resolve_visitor reads through the Redis store's get_for_request, whose script keeps the
    enabled segments' window sums for the visitor's next request; a plain read (the worker's,
    with windows of its own) sums everything and keeps nothing."""
    import time

    from tailored import conf
    from tailored.core.types import Event

    _, windows = segment_cache.current()
    assert windows  # the demo's segments count page views in windows
    store, now, other = conf.get_profile_store(), time.time(), "e" * 32
    for visitor in (VISITOR, other):  # a page view an hour for two days: long series, worth keeping
        store.record(visitor, [Event(f"v{h}", "page_view", ts=now - h * 3600, category="electronics") for h in range(48)], now)
    assert "electronics-fans" in services.resolve_visitor(request_for()).segments
    assert redis_client.hexists(f"tl:v1:{{{VISITOR}}}:w", "~sums")
    store.get_many([other], now, windows)
    assert not redis_client.hexists(f"tl:v1:{{{other}}}:w", "~sums")
