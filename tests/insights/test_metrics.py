"""/metrics (issue 17 items 6 and 7): off by default, guarded by a token or an address list, and
what it serves parses with prometheus-client's own parser and carries the request-path timings,
ingestion counts and rejects, the stream's state and the insight totals."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tailored.insights import counting
from tests.helpers import HOME_BLOCK, consent_cookies

pytestmark = pytest.mark.django_db
parser = pytest.importorskip("prometheus_client.parser")

TOKEN = "m3trics"


@pytest.fixture
def metrics_on(use_redis_store, personalization):
    personalization(METRICS_ENABLED=True, METRICS_TOKEN=TOKEN)


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    families = parser.text_string_to_metric_families(response.content.decode())
    return {family.name: family for family in families}


def value(family, **labels) -> float:
    return sum(s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items()) and not s.name.endswith("_created"))


def test_metrics_are_off_unless_enabled(client):
    response = client.get("/metrics")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_a_scrape_needs_the_token_or_an_allowed_address(client, metrics_on, personalization):
    assert client.get("/metrics").json()["error"] == "forbidden"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    personalization(METRICS_ENABLED=True, METRICS_TOKEN=None, METRICS_ALLOWED_IPS=["127.0.0.0/8"])
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    personalization(METRICS_ALLOWED_IPS=["10.0.0.0/8"])
    assert client.get("/metrics").status_code == 403


def test_the_scrape_parses_and_carries_timings_ingestion_stream_and_insights(client, metrics_on):
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    before = scrape(client, **bearer)
    consent_cookies(client, "e" * 32)
    client.get("/")
    now = int(time.time() * 1000)
    batch = {"events": [{"type": "page_view", "id": "m1", "ts": now}, {"type": "nope", "id": "m2", "ts": now}]}
    client.post("/api/events", data=json.dumps(batch), content_type="application/json")
    cell = f"{int(time.time() // 3600)}|3|{HOME_BLOCK}|fallback||desktop|DE"
    counting.apply(uuid.uuid4().hex, {f"{cell}|i": 40, f"{cell}|c": 4, f"{cell}|ca": 2})

    after = scrape(client, **bearer)
    assert value(after["tailored_resolve_visitor_seconds"]) > value(before["tailored_resolve_visitor_seconds"])
    assert value(after["tailored_segment_evaluation_seconds"]) > 0 and value(after["tailored_redis_call_seconds"]) > 0
    assert value(after["tailored_events_ingested"]) - value(before["tailored_events_ingested"]) == 1
    assert value(after["tailored_events_rejected"], reason="unknown_type") - value(before["tailored_events_rejected"], reason="unknown_type") == 1
    assert value(after["tailored_stream_length"]) >= 1  # the accepted batch waits for a worker
    assert value(after["tailored_redis_breaker_open"]) == 0
    assert value(after["tailored_block_impressions"], block=HOME_BLOCK, variant="fallback") == 40
    assert value(after["tailored_block_clicks"], block=HOME_BLOCK) == 4
    assert value(after["tailored_block_conversions"], block=HOME_BLOCK) == 2
    assert "tailored_model_info" in after and "tailored_stream_lag_seconds" in after


def test_the_grafana_dashboard_uses_only_metrics_the_endpoint_serves(client, metrics_on):
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana" / "tailored-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {re.sub(r"_(bucket|count|sum|total)$", "", name) for expr in exprs for name in re.findall(r"tailored_\w+", expr)}
    served = set(scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert used <= served, used - served
