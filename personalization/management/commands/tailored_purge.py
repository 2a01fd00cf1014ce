"""`manage.py tailored_purge`: enforce the retention period (RETENTION_DAYS).

Deletes persisted events older than the retention period, and webhook deliveries that finished
(delivered or given up) before it; pending deliveries are kept whatever their age. Deletes in
chunks so a large backlog never holds one long transaction or lock. Run it daily (cron)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.management.base import BaseCommand
from django.db.models import QuerySet
from django.utils import timezone

from tailored import conf
from tailored.models import Event, WebhookDelivery

DEFAULT_CHUNK_SIZE = 5000


def expired(cutoff: datetime) -> dict[str, QuerySet]:
    """What the retention period has run out for, by label."""
    finished = [WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED]
    return {
        "events": Event.objects.filter(ts__lt=cutoff),
        "webhook deliveries": WebhookDelivery.objects.filter(status__in=finished, created_at__lt=cutoff),
    }


def delete_in_chunks(queryset: QuerySet, chunk_size: int) -> int:
    """Delete the rows of `queryset` `chunk_size` at a time (each chunk its own statement)."""
    deleted = 0
    while ids := list(queryset.values_list("pk", flat=True)[:chunk_size]):
        count, _ = queryset.model.objects.filter(pk__in=ids).delete()
        deleted += count
    return deleted


def purge(now: datetime, dry_run: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, int]:
    """Delete (or with `dry_run`, count) everything older than RETENTION_DAYS before `now`."""
    cutoff = now - timedelta(days=conf.get("RETENTION_DAYS"))
    return {
        label: queryset.count() if dry_run else delete_in_chunks(queryset, chunk_size)
        for label, queryset in expired(cutoff).items()
    }


class Command(BaseCommand):
    help = "Delete events and finished webhook deliveries older than PERSONALIZATION['RETENTION_DAYS']."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="Rows deleted per statement.")

    def handle(self, *args, **options):
        days = conf.get("RETENTION_DAYS")
        counts = purge(timezone.now(), dry_run=options["dry_run"], chunk_size=options["chunk_size"])
        verb = "would delete" if options["dry_run"] else "deleted"
        for label, count in counts.items():
            self.stdout.write(f"{verb} {count} {label} older than {days} days")
        if options["dry_run"]:
            self.stdout.write("dry run: nothing was deleted")
