"""`manage.py tailored_purge`: enforce the retention periods. Run it daily (cron).

RETENTION_DAYS governs everything about visitors:
* persisted events older than it, and webhook deliveries that finished (delivered or given up)
  before it (pending deliveries are kept whatever their age: they are still being tried);
* in the profile store: profiles inactive for longer (also those written under a longer
  setting, which expiry alone would keep), event-stream entries and dead letters older than it,
  erasure tombstones, the recent-visitors set and the daily segment counts;
* the experiments' and the holdout's memberships of visitors exposed before it (the hourly
  counts, which hold no id, stay).

INSIGHTS_HOURLY_DAYS and INSIGHTS_DAILY_DAYS govern the Insights report's hourly and daily rows
(and its traffic counts, score distributions and alerts): counts only, no visitor id.

AUDIT_RETENTION_DAYS governs the data-rights audit rows (exports and erasures, which name the
visitor by a digest or a pseudonymous id only): long enough to show what was done when asked.

Database rows go in chunks, so a large backlog never holds one long transaction or lock. With
Redis unavailable, the database part still runs and the command fails at the end, so cron
reports it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet
from django.utils import timezone

from tailored import conf, holdout, redis_guard
from tailored.experiments import counting
from tailored.experiments.models import Experiment
from tailored.insights import counting as insights_counting
from tailored.management.arguments import whole
from tailored.management.database import needs_migrated_database
from tailored.models import DataRightsAudit, Event, WebhookDelivery
from tailored.progress import Progress, Say

DEFAULT_CHUNK_SIZE = 5000
# A chunk's ids are one statement's parameters: SQLite's default limit is 32,766 a statement (a
# larger --chunk-size failed there; a 30-digit one failed on any SQLite, "datatype mismatch").
MAX_CHUNK_SIZE = 30_000
PROGRESS_CHUNKS = 4  # a table with more rows to delete than this many chunks says how far it is


def expired(now: datetime) -> dict[str, tuple[QuerySet, int]]:
    """What a retention period has run out for, by label, with that period in days."""
    days, audit_days = conf.get("RETENTION_DAYS"), conf.get("AUDIT_RETENTION_DAYS")
    cutoff, audit_cutoff = now - timedelta(days=days), now - timedelta(days=audit_days)
    finished = [WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED]
    return {
        "events": (Event.objects.filter(ts__lt=cutoff), days),
        "webhook deliveries": (WebhookDelivery.objects.filter(status__in=finished, created_at__lt=cutoff), days),
        "data-rights audit rows": (DataRightsAudit.objects.filter(at__lt=audit_cutoff), audit_days),
        **insights_counting.expired(now),  # aggregate rows, no visitor in them (issue 17)
    }


def delete_in_chunks(queryset: QuerySet, chunk_size: int, progress: Callable[[int], None] | None = None) -> int:
    """Delete the rows of `queryset` `chunk_size` at a time (each chunk its own statement);
    `progress` is told how many of its rows are gone after each chunk."""
    deleted = gone = 0
    while ids := list(queryset.values_list("pk", flat=True)[:chunk_size]):
        count, _ = queryset.model.objects.filter(pk__in=ids).delete()
        deleted, gone = deleted + count, gone + len(ids)
        if progress is not None:
            progress(gone)
    return deleted


def purge(now: datetime, dry_run: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, tuple[int, int]]:
    """Delete (or with `dry_run`, count) the database rows past their retention period:
    label -> (rows, days)."""
    return {label: (rows, days) for label, rows, days in purge_tables(now, dry_run, chunk_size)}


def purge_tables(now: datetime, dry_run: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 say: Say | None = None) -> Iterator[tuple[str, int, int]]:
    """Delete (or with `dry_run`, count) the database rows past their retention period, table by
    table: (label, rows, days) as each is done. A backlog of more than a few chunks is counted
    first, and `say` hears at every tenth of it how far the deletion is."""
    for label, (queryset, days) in expired(now).items():
        if dry_run:
            yield label, queryset.count(), days
            continue
        total = queryset.count() if say is not None else 0
        progress = Progress(f"deleting {label}", total, say) if total > PROGRESS_CHUNKS * chunk_size else None
        yield label, delete_in_chunks(queryset, chunk_size, progress), days


def purge_live_data(now: float) -> dict[str, int]:
    """What the profile store and the experiment counters hold past RETENTION_DAYS: counts by kind."""
    counts = dict(conf.get_profile_store().purge(now))
    cutoff = now - conf.get("RETENTION_DAYS") * 86400
    measured = [(e.key, e.goal_list) for e in Experiment.objects.only("key", "goals")]
    measured.append((holdout.HOLDOUT_KEY, holdout.goals()))
    backend = counting.counters()
    counts["experiment and holdout memberships"] = sum(backend.expire(key, goals, cutoff) for key, goals in measured)
    return counts


class Command(BaseCommand):
    help = (
        "Delete what is older than PERSONALIZATION['RETENTION_DAYS'] (events, profiles, stream entries, "
        "experiment memberships) and audit rows older than AUDIT_RETENTION_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count the database rows that would go; change nothing.")
        parser.add_argument("--chunk-size", type=whole(1, "rows", MAX_CHUNK_SIZE), default=DEFAULT_CHUNK_SIZE,
                            help=f"Rows deleted per statement, 1 to {MAX_CHUNK_SIZE:,} (default {DEFAULT_CHUNK_SIZE:,}).")

    @needs_migrated_database
    def handle(self, *args, **options):
        if not 1 <= options["chunk_size"] <= MAX_CHUNK_SIZE:  # also when call_command is given chunk_size=
            raise CommandError(f"--chunk-size must be from 1 to {MAX_CHUNK_SIZE}, not {options['chunk_size']}.")
        dry_run = options["dry_run"]
        verb = "would delete" if dry_run else "deleted"
        for label, count, days in purge_tables(timezone.now(), dry_run, options["chunk_size"], say=self.stdout.write):
            self.stdout.write(f"{verb} {count} {label} older than {days} days")
        if dry_run:
            self.stdout.write("dry run: nothing was deleted (the profile store is purged only in a real run)")
            return
        try:
            live = purge_live_data(time.time())
        except redis_guard.OUTAGE as error:
            raise CommandError(f"Redis is unavailable ({error}): the database was purged, the profile store was not. Run again.") from error
        days = conf.get("RETENTION_DAYS")
        for label, count in live.items():
            self.stdout.write(f"profile store: removed {count} {label} older than {days} days")
