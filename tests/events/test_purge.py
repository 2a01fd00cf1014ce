"""`manage.py tailored_purge`: only what the retention period has run out for is deleted."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tailored.models import Event, WebhookDelivery

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


@pytest.fixture
def rows(settings):
    settings.PERSONALIZATION = {"RETENTION_DAYS": 90}
    Event.objects.bulk_create(
        [Event(visitor_id="v", event_id=f"old{i}", type="page_view", ts=OLD) for i in range(7)]
        + [Event(visitor_id="v", event_id=f"new{i}", type="page_view", ts=RECENT) for i in range(3)]
    )
    for status in ("delivered", "failed", "pending"):
        for label in ("old", "new"):
            WebhookDelivery.objects.create(
                topic="cart_abandoned", url="https://crm.example/hook", payload={"label": label},
                status=status, next_attempt_at=NOW,
            )
    # created_at is set on insert; age the "old" ones afterwards.
    WebhookDelivery.objects.filter(payload__label="old").update(created_at=OLD)


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("tailored_purge", *args, stdout=out)
    return out.getvalue()


def test_purge_deletes_only_what_is_older_than_the_retention_period(rows):
    output = purge("--chunk-size", "3")

    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["new0", "new1", "new2"]
    # Old finished deliveries go; pending ones stay whatever their age (they are still being tried).
    assert sorted(WebhookDelivery.objects.values_list("status", "payload__label")) == [
        ("delivered", "new"), ("failed", "new"), ("pending", "new"), ("pending", "old"),
    ]
    assert "deleted 7 events older than 90 days" in output
    assert "deleted 2 webhook deliveries older than 90 days" in output


def test_a_dry_run_counts_and_deletes_nothing(rows):
    output = purge("--dry-run")

    assert Event.objects.count() == 10
    assert WebhookDelivery.objects.count() == 6
    assert "would delete 7 events" in output
    assert "would delete 2 webhook deliveries" in output
    assert "nothing was deleted" in output


def test_purging_twice_deletes_nothing_the_second_time(rows):
    purge()

    assert "deleted 0 events" in purge()
    assert Event.objects.count() == 3


def test_a_large_backlog_says_how_far_it_is_table_by_table(settings):
    """Over a few chunks, a table's deletion reports every tenth of it (with the time left), and
    each table's line comes when that table is done, before the next one starts."""
    settings.PERSONALIZATION = {"RETENTION_DAYS": 90}
    Event.objects.bulk_create([Event(visitor_id="v", event_id=f"old{i}", type="page_view", ts=OLD) for i in range(100)])
    lines = purge("--chunk-size", "5").splitlines()
    steps = [line for line in lines if line.startswith("  deleting events:")]
    assert [step.split(":")[1].split()[0] for step in steps] == [f"{n}/100" for n in range(10, 101, 10)]
    assert all("s left" in step for step in steps)
    assert lines.index("deleted 100 events older than 90 days") == lines.index(steps[-1]) + 1
    assert lines.index("deleted 100 events older than 90 days") < lines.index("deleted 0 webhook deliveries older than 90 days")
    assert not Event.objects.exists()
