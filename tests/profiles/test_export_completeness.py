"""GET /api/me/data holds everything kept under the visitor's id: stored through the site's own
paths (a page view exposing the visitor to an experiment and the holdout, tracker events through
/api/events, the stream worker storing them, /api/identify for activation), then found in the
export. The session's real Redis and the test database."""

from __future__ import annotations

import json
import time

import pytest

from tailored import conf, worker
from tailored.activation import triggers
from tailored.activation.models import Destination, Trigger
from tailored.events.stream import CART_WATCH_KEY
from tailored.holdout import HOLDOUT_KEY
from tailored.insights import counting as insights_counting
from tailored.models import Segment
from tailored.profiles.redis import PROFILE_KEYS
from tests.experiments.conftest import make_experiment, running, visitor_in
from tests.helpers import HOME_BLOCK, experiment_cache_cleared, signed_visitor_id

pytestmark = pytest.mark.django_db

fresh_experiment_cache = pytest.fixture(autouse=True, name="fresh_experiment_cache")(experiment_cache_cleared)
VARIANT_ARMS = [("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})]


def drain(client) -> None:
    who = worker.Consumer(name="export-test", batch=50, block_ms=0, claim_idle_seconds=0)
    while worker.process_once(client, who):
        pass


@pytest.fixture
def visitor(client, use_redis_store, redis_client, personalization):
    """A visitor with everything: an experiment's and the holdout's exposure and conversion, seen
    items, a cart under watch, trigger states and a scheduled check, the Insights attribution."""
    personalization(GLOBAL_HOLDOUT_PERCENT=50, GLOBAL_HOLDOUT_GOALS=["add_to_cart"], SEGMENT_REFRESH_SECONDS=0)
    worker.ensure_group(redis_client)
    triggers.trigger_cache.invalidate()
    email = Destination.objects.create(name="Shop email", kind="email", email_subject="Hello", email_body="Hi")
    Trigger.objects.create(name="Left the cart", kind="cart_abandoned", destination=email, params={"minutes": 30})
    Trigger.objects.create(
        name="Became a fan", kind="segment_entered", destination=email, segment=Segment.objects.get(slug="electronics-fans")
    )
    make_experiment(arms=VARIANT_ARMS, goals="add_to_cart")
    visitor_id = visitor_in(running("hero-test"), "electronics")
    client.cookies["tl_consent"] = "analytics.personalization.marketing"
    client.cookies["tl_vid"] = signed_visitor_id(visitor_id)
    assert client.get("/").status_code == 200  # exposed to the experiment and the holdout
    identify = client.post("/api/identify", json.dumps({"email": "ada@example.com"}), content_type="application/json")
    assert identify.status_code in (200, 202, 204), identify.content
    now_ms = int(time.time() * 1000)
    events = [
        {"type": "impression", "id": "i1", "block": HOME_BLOCK, "variant": "fallback", "page": 3},
        {"type": "page_view", "id": "p1", "category": "books", "product_id": 41, "url": "/b/41/"},
        {"type": "add_to_cart", "id": "c1", "product_id": 41},
    ]
    body = {"events": [{"ts": now_ms, **event} for event in events]}
    assert client.post("/api/events", json.dumps(body), content_type="application/json").status_code == 202
    drain(redis_client)  # the worker stores them: seen items, cart watch, triggers, Insights
    yield visitor_id
    triggers.trigger_cache.invalidate()


def test_the_export_holds_every_experiment_holdout_and_worker_record_under_the_id(client, redis_client, visitor):
    now = time.time()
    data = client.get("/api/me/data").json()

    assert data["assignments"] == data["profile"]["assignments"] == {"hero-test": "electronics"}
    experiment = data["experiments"]["hero-test"]
    assert (experiment["arm"], experiment["conversions"]) == ("electronics", ["add_to_cart"])
    assert experiment["exposed_at"] == pytest.approx(now, abs=60) and "covariate" in experiment

    group = redis_client.hget(f"tl:v1:xp:{{{HOLDOUT_KEY}}}:exposed", visitor).split("|")[0]
    assert data["holdout"]["group"] == group in ("holdout", "personalized")
    assert data["holdout"]["exposed_at"] == pytest.approx(now, abs=60)
    assert data["holdout"]["conversions"] == ["add_to_cart"]

    [had] = data["seen_items"]
    assert had["item"] == "41" and had["last_seen"] == pytest.approx(now, abs=60)

    cart_minutes = conf.get("CART_ABANDONMENT_MINUTES")
    assert data["cart_abandonment_check_at"] == pytest.approx(now + cart_minutes * 60, abs=60)

    held = data["activation"]["triggers"]
    assert {(state["trigger"], state["holds"]) for state in held["states"]} >= {("Became a fan", False)}
    [check] = held["scheduled_checks"]
    assert (check["trigger"], check["item"]) == ("Left the cart", None)
    assert check["due_at"] == pytest.approx(now + 30 * 60, abs=60)
    assert data["activation"]["identity"]["email"] == "ada@example.com"

    [cell] = data["insight_attribution"]
    assert (cell["page"], cell["block"], cell["variant"]) == ("3", HOME_BLOCK, "fallback")
    assert cell["last_seen"] == pytest.approx(now, abs=60)


def test_every_redis_key_and_membership_under_the_id_has_its_place_in_the_export(client, redis_client, visitor):
    """Whatever Redis holds under the id (keys named by it or by its Insights digest, and its
    memberships of shared sets and hashes) is one of the kinds the export answers for."""
    data = client.get("/api/me/data").json()
    exported_as = {  # where the export holds what each key of the visitor's keeps
        **dict.fromkeys(PROFILE_KEYS, data["profile"]),
        "w": data["counters"],
        "ids": data["events"],  # dedup marks: the ids of the events exported
        "rate": data["events"],  # this minute's count of them (rate limit, 2 minutes)
        "had": data["seen_items"],
        "act": data["activation"]["triggers"]["states"],
    }
    digest = insights_counting.digest(visitor)
    named = sorted(key for key in redis_client.scan_iter(count=1000) if visitor in key or digest in key)
    assert len(named) > 5
    for key in named:
        if digest in key:
            assert key.endswith(f"seen:{digest}") and data["insight_attribution"], key
            continue
        prefix = f"tl:v1:{{{visitor}}}:"
        assert key.startswith(prefix), f"a key named by the id is not exported: {key}"
        kind = key[len(prefix):].split(":", 1)[0]
        assert kind in exported_as, f"{key}: a kind of key the export does not know"
        assert exported_as[kind], f"{key} holds data the export leaves out"

    # Shared keys holding the id as a member or field.
    assert redis_client.zscore(CART_WATCH_KEY, visitor) is not None and data["cart_abandonment_check_at"]
    assert any(f"|{visitor}|" in member for member in redis_client.zrange(triggers.DUE_KEY, 0, -1))
    assert data["activation"]["triggers"]["scheduled_checks"]
    for name in redis_client.scan_iter(match="tl:v1:xp:*", count=1000):
        kind = redis_client.type(name)
        if kind == "hash" and name.endswith(":exposed") and redis_client.hexists(name, visitor):
            key = name.split("{", 1)[1].split("}", 1)[0]
            assert (data["holdout"] if key == HOLDOUT_KEY else data["experiments"].get(key)), name
        elif kind == "set" and ":conv:" in name and redis_client.sismember(name, visitor):
            key, goal = name.split("{", 1)[1].split("}", 1)[0], name.rsplit(":conv:", 1)[1]
            held = data["holdout"] if key == HOLDOUT_KEY else data["experiments"].get(key, {})
            assert goal in held["conversions"], name
