"""Anomaly alerts through the database (issue 17 item 4): the hourly check reads InsightHour rows,
raises one Alert per moved cell naming it, sends it to a real local webhook receiver (signed) and
by email, and alerts on tracking failures; the worker's loop checks each hour once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from django.core import mail

from tailored import webhooks
from tailored.insights import alerts, counting
from tailored.models import Alert, InsightHour, TrafficHour
from tests.events.test_webhooks import SECRET, Receiver
from tests.helpers import HOME_BLOCK

pytestmark = pytest.mark.django_db

END = 490_000 + 15  # an epoch hour: the check tests the two hours before it
WEEK = 168


def home_page_id() -> int:
    from cms.models import HomePage

    return HomePage.objects.live().first().pk


def rows(variant: str, segment: str, impressions: int, clicks: int, hours) -> None:
    values = {}
    for hour in hours:
        cell = f"{hour}|{home_page_id()}|{HOME_BLOCK}|{variant}|{segment}|desktop|DE"
        values.update({f"{cell}|i": impressions, f"{cell}|c": clicks})
    counting.apply(uuid.uuid4().hex, values)


def history(variant="fallback", segment="", impressions=2000, clicks=100, tested_clicks=None):
    """Four weeks of the same two hours, then the tested two hours."""
    rows(variant, segment, impressions, clicks, [END - w * WEEK - k for w in range(1, 5) for k in (1, 2)])
    rows(variant, segment, impressions, clicks if tested_clicks is None else tested_clicks, [END - 1, END - 2])


@pytest.fixture
def receiver(personalization):
    with Receiver([200]) as server:
        personalization(WEBHOOKS=[{"url": server.url, "secret": SECRET, "topics": [alerts.TOPIC]}], ALERT_EMAILS=["ops@example.com"])
        yield server


def test_a_ctr_drop_becomes_one_alert_naming_the_cell_sent_by_webhook_and_email(receiver):
    history("fallback", "electronics-fans", tested_clicks=60)  # 5% -> 3%
    history("fallback", "")  # steady
    raised = alerts.check(END)
    assert [(a.kind, a.key, a.direction) for a in raised] == [("ctr", f"{home_page_id()}|{HOME_BLOCK}|fallback|electronics-fans", "drop")]
    alert = raised[0]
    assert "CTR of “Fallback” (Personalized: Good things for every day, " in alert.message
    assert "for electronics-fans dropped 40%: 3.00% against 5.00%" in alert.message
    assert alert.since == datetime.fromtimestamp((END - 2) * 3600, tz=UTC)
    assert alert.link.startswith("/admin/insights/?") and f"#block-{HOME_BLOCK}" in alert.link

    assert webhooks.deliver_due()["delivered"] == 1
    headers, body = receiver.requests[0]
    assert webhooks.verify_signature(SECRET, body, headers["X-Tailored-Signature"])
    payload = json.loads(body)
    assert (payload["topic"], payload["segment"], payload["variant"], payload["observed"]) == (alerts.TOPIC, "electronics-fans", "fallback", 0.03)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@example.com"] and "dropped 40%" in mail.outbox[0].body

    assert alerts.check(END) == []  # the same cell a second time within a day: no new alert


def test_quiet_cells_stay_quiet(receiver):
    history("fallback", "tiny", impressions=40, clicks=2, tested_clicks=0)
    assert alerts.check(END) == []


def test_tracking_volume_falling_and_dead_letters_alert(receiver):
    for week in range(1, 5):
        TrafficHour.objects.create(hour=datetime.fromtimestamp((END - 1 - week * WEEK) * 3600, tz=UTC), events=1000)
    TrafficHour.objects.create(hour=datetime.fromtimestamp((END - 1) * 3600, tz=UTC), events=200, dead_letters=150)
    kinds = sorted(a.kind for a in alerts.check(END))
    assert kinds == ["dead_letters", "tracking"]
    assert "Tracking volume fell to 20% of normal" in Alert.objects.get(kind="tracking").message


def test_the_worker_checks_each_hour_once(redis_client, receiver):
    history("fallback", "", tested_clicks=40)
    assert InsightHour.objects.exists()
    moment = END * 3600 + alerts.CHECK_DELAY_SECONDS + 5
    assert alerts.check_due(redis_client, moment) == 1
    assert alerts.check_due(redis_client, moment + 60) == 0  # checked (by this or another worker)
    assert alerts.check_due(redis_client, END * 3600 + 10) == 0  # too early in an hour: the flush may lag
