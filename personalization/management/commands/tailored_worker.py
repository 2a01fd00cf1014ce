"""`manage.py tailored_worker`: one consumer of the event stream (run as many as needed).

The loop itself lives in `tailored.worker`; this command only reads options, connects and
turns SIGTERM/SIGINT into a graceful stop (the batch in hand is finished and acknowledged)."""

from __future__ import annotations

import math
import os
import socket
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db.utils import OperationalError

from tailored import conf, redis_guard, worker
from tailored.events.stream import stream_keys
from tailored.management.database import missing_table, needs_migrated_database


class Command(BaseCommand):
    help = (
        "Consume the Redis event stream as a member of the tl-workers group: persist events, "
        "score visitors, count insights, evaluate activation triggers, detect abandoned carts, "
        "deliver webhooks and activation sends. Stops gracefully on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--name",
            default=f"{socket.gethostname()}-{os.getpid()}",
            help="Consumer name in the group (default: host-pid). Reuse it to resume a crashed worker's entries at once.",
        )
        parser.add_argument("--once", action="store_true", help="Run one turn of the loop, then exit.")
        parser.add_argument(
            "--shards", type=int, default=None,
            help="Read this many stream shards (default: EVENT_STREAM_SHARDS); with --until-empty, drains the "
            "old layout when EVENT_STREAM_SHARDS changes (README: Redis Cluster).",
        )
        parser.add_argument(
            "--until-empty", action="store_true", help="Exit once a turn finds nothing and every shard it reads is empty.",
        )
        parser.add_argument(
            "--block-ms", type=int, default=2000,
            help="How long a read waits for new entries (0: never waits). Also bounds how late a stop request is seen.",
        )
        parser.add_argument("--batch", type=int, default=None, help="Entries per read (default: WORKER_BATCH).")
        parser.add_argument(
            "--claim-idle-seconds", type=float, default=None,
            help="Claim entries another consumer left unacknowledged this long (default: WORKER_CLAIM_IDLE_SECONDS).",
        )

    @needs_migrated_database
    def handle(self, *args, **options):
        check_numbers(options)
        url = conf.get("REDIS_URL")
        if not url:
            raise CommandError("PERSONALIZATION['REDIS_URL'] is not set: the worker reads the Redis event stream.")
        try:
            self._consume(url, options)
        except redis_guard.OUTAGE as error:
            # Only a single turn (--once) or a drain's emptiness check ends here: the loop itself
            # waits for Redis to come back. Entries not acknowledged are read again then.
            raise CommandError(f"Redis is unavailable ({error}): run the worker again once Redis answers") from error
        except OperationalError as error:
            if missing_table(error):
                raise  # not unavailable: not migrated (needs_migrated_database says so)
            raise CommandError(f"the database is unavailable ({error}): run the worker again once it answers") from error

    def _consume(self, url: str, options: dict) -> None:
        shards = options["shards"]
        consumer = worker.Consumer.from_settings(
            options["name"],
            batch=options["batch"],
            block_ms=options["block_ms"],
            claim_idle_seconds=options["claim_idle_seconds"],
            streams=tuple(stream_keys(shards)) if shards is not None else None,
        )
        client = worker.connect(url, consumer.block_ms, cluster=bool(conf.get("REDIS_CLUSTER")))
        stop = threading.Event()
        worker.install_signal_handlers(stop)
        self.stdout.write(
            f"worker {consumer.name}: consuming {', '.join(consumer.streams)} as group {worker.CONSUMER_GROUP} "
            f"(batch {consumer.batch}, claim after {consumer.claim_idle_seconds:g} s idle)"
        )
        try:
            total = worker.run(
                client, consumer, stop, report=self.stdout.write, once=options["once"], until_empty=options["until_empty"],
                settle=True,
            )
        finally:
            worker.leave_group(client, consumer)
            client.close()
        self.stdout.write(
            self.style.SUCCESS(f"worker {consumer.name}: stopped after {total.entries} entries, {total.events} events")
        )


def check_numbers(options: dict) -> None:
    """Refuse what the loop cannot run with: Redis answers a zero or negative COUNT, a negative
    BLOCK or a negative idle time with an error on every turn, so the worker would spin forever."""
    if options["shards"] is not None and options["shards"] < 1:
        raise CommandError("--shards must be at least 1.")
    if options["batch"] is not None and options["batch"] < 1:
        raise CommandError(f"--batch must be at least 1, not {options['batch']}.")
    if options["block_ms"] < 0:
        raise CommandError(f"--block-ms must be 0 or more, not {options['block_ms']}.")
    idle = options["claim_idle_seconds"]
    if idle is not None and not (math.isfinite(idle) and idle >= 0):
        raise CommandError(f"--claim-idle-seconds must be a number of seconds, 0 or more, not {idle:g}.")
