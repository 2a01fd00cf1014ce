"""A Redis that answers but refuses writes (out of memory under `noeviction`, or a replica during
a failover) is an outage to visitors: JSON 503s, typed GraphQL errors, withdrawals queued, never
a 500 or a half-done erasure; and a publish it did not take still ends the cached pages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.test import Client

from tailored import conf, erasure, worker
from tailored.blocks import page_cache
from tailored.models import PendingErasure
from tests.conftest import DESKTOP_UA
from tests.helpers import consent_cookies, drain_stream, keys_naming, make_fan, post_events
from tests.redis_server import guarded_settings, own_redis  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

VISITOR = "b2" * 16
OPERATIONS = Path(__file__).parents[1] / "graphql" / "operations"


def refuse_writes(server, how: str) -> None:
    client = server.client()
    if how == "oom":
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)
    else:
        client.execute_command("REPLICAOF", "127.0.0.1", 1)  # a replica of nothing: read-only


def take_writes(server) -> None:
    client = server.client()
    client.config_set("maxmemory", 0)
    client.execute_command("REPLICAOF", "NO", "ONE")


@pytest.fixture
def visitor(settings, own_redis):  # noqa: F811
    settings.PERSONALIZATION = guarded_settings(own_redis, REDIS_BREAKER_COOLDOWN_SECONDS=0.3)
    worker.ensure_group(own_redis.client())
    browser = Client(HTTP_USER_AGENT=DESKTOP_UA, raise_request_exception=False)
    consent_cookies(browser, VISITOR)
    post_events(browser, [{"type": "page_view", "id": "p1", "category": "books", "product_id": 41}])
    return browser


@pytest.mark.parametrize("how", ["oom", "readonly"])
def test_events_are_a_json_503_with_retry_after(visitor, own_redis, how):  # noqa: F811
    refuse_writes(own_redis, how)
    body = json.dumps({"events": [{"type": "page_view", "id": "p2", "ts": int(time.time() * 1000), "category": "books"}]})
    response = visitor.post("/api/events", body, content_type="application/json")
    assert (response.status_code, response.json()["error"], response["Retry-After"]) == (503, "unavailable", "5")


@pytest.mark.parametrize("how", ["oom", "readonly"])
def test_an_erasure_redis_refuses_deletes_nothing_and_can_be_asked_again(visitor, own_redis, how):  # noqa: F811
    refuse_writes(own_redis, how)
    response = visitor.delete("/api/me")
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")
    assert keys_naming(own_redis.client(), VISITOR) != []  # no half-done erasure: the profile is whole
    take_writes(own_redis)
    assert visitor.delete("/api/me").status_code == 200
    drain_stream(own_redis.client())
    assert keys_naming(own_redis.client(), VISITOR) == []


@pytest.mark.parametrize("how", ["oom", "readonly"])
def test_withdrawing_consent_is_queued_and_the_cookies_go(visitor, own_redis, how):  # noqa: F811
    refuse_writes(own_redis, how)
    response = visitor.post("/consent/", {"choice": "decline"})
    assert response.status_code == 303
    assert response.cookies["tl_vid"].value == ""
    assert list(PendingErasure.objects.values_list("visitor_id", flat=True)) == [VISITOR]
    take_writes(own_redis)
    assert erasure.complete_pending_erasures() == 1
    drain_stream(own_redis.client())
    assert keys_naming(own_redis.client(), VISITOR) == []


@pytest.mark.parametrize("operation", ["track_events", "erase_my_data"])
def test_graphql_answers_the_typed_unavailable_error_without_internals(visitor, own_redis, operation):  # noqa: F811
    refuse_writes(own_redis, "oom")
    variables = {"events": [{"type": "page_view", "id": "g1", "ts": int(time.time() * 1000), "category": "books"}]}
    document = (OPERATIONS / f"{operation}.graphql").read_text()
    response = visitor.post("/graphql/", {"query": document, "variables": variables}, content_type="application/json")
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    [result] = body["data"].values()
    assert [error["code"] for error in result["errors"]] == ["unavailable"]
    assert "maxmemory" not in response.content.decode()


@pytest.mark.parametrize("how", ["oom", "readonly"])
def test_a_publish_redis_did_not_take_still_ends_the_cached_pages_here(settings, own_redis, how):  # noqa: F811
    from cms.models import ProductPage

    settings.PERSONALIZATION = guarded_settings(own_redis, REDIS_BREAKER_COOLDOWN_SECONDS=0.3)
    make_fan(VISITOR)
    conf.get_profile_store().set_preferences(VISITOR, ["electronics"])
    browser = Client(HTTP_USER_AGENT=DESKTOP_UA)
    consent_cookies(browser, VISITOR)
    browser.get("/")
    assert browser.get("/")[page_cache.HEADER] == "hit"
    refuse_writes(own_redis, how)
    time.sleep(page_cache.GENERATION_SECONDS + 0.1)
    ProductPage.objects.live().first().save_revision().publish()
    assert [browser.get("/")[page_cache.HEADER] for _ in range(3)] == ["miss"] * 3
