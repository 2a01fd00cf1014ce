"""Reallocate the running Thompson-sampling experiments now (the worker does it at each one's
cadence): flush their counts, compute new weights, record them, and tell the web processes."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tailored import ml, redis_guard
from tailored.experiments.bandit import due, reallocate_due
from tailored.management.database import needs_migrated_database


class Command(BaseCommand):
    help = "Recompute the traffic weights of running Thompson-sampling experiments that are due."

    @needs_migrated_database
    def handle(self, *args, **options) -> None:
        pending = due()
        self.stdout.write(f"{len(pending)} Thompson-sampling experiment(s) due")
        if pending and not ml.available():
            # Thompson sampling draws with numpy; with nothing due there is nothing to say.
            raise CommandError(f"{ml.requirement_message('Reallocating')}; until then they keep their weights")
        try:
            changes = reallocate_due()
        except redis_guard.OUTAGE as error:
            # The counts are flushed from Redis before any weight is computed: none was recorded.
            raise CommandError(f"Redis is unavailable ({error}); no weights were changed") from error
        for change in changes:
            shares = ", ".join(f"{arm} {weight:.1%}" for arm, weight in change.weights.items())
            seen = ", ".join(f"{arm} {c}/{n}" for arm, (c, n) in change.counts.items())
            self.stdout.write(f"  {change.experiment}: {shares}  ({change.reason}; conversions/exposures: {seen})")
        self.stdout.write(self.style.SUCCESS("done"))
