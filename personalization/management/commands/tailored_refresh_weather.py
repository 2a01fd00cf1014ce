"""`manage.py tailored_refresh_weather`: fill the weather cache the request path reads.

Fetches the current weather of every region in PERSONALIZATION["WEATHER_REGIONS"] (or of the
`--region KEY[=LOCATION]` arguments) from WEATHER_API_URL and caches each for
WEATHER_CACHE_SECONDS (15 minutes). Run it from cron every 10 minutes, or keep it running with
`--every 600`. With the memory profile store the cache is per process, so this command only
helps in-process; web processes then fill their own cache in the background (see
tailored.context.weather)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from tailored import conf
from tailored.context.weather import (
    configured_regions,
    get_provider,
    parse_regions,
    refresh_weather,
)
from tailored.management.arguments import seconds
from tailored.management.database import needs_migrated_database

# --every's most: a longer wait outlives every cached report (WEATHER_CACHE_SECONDS) many times
# over; run the command from cron instead. (NaN and infinity once reached time.sleep and failed
# there, after a full refresh.)
MAX_EVERY_SECONDS = 86400


class Command(BaseCommand):
    help = "Fetch the current weather of the configured regions into the weather cache."

    def add_arguments(self, parser):
        parser.add_argument(
            "--region",
            action="append",
            default=[],
            metavar="KEY[=LOCATION]",
            help="A region key ('US-CA', 'DE') and optionally its location ('Los Angeles,US' or "
            "'34.05,-118.24'); repeat for several. Default: WEATHER_REGIONS.",
        )
        parser.add_argument(
            "--every",
            type=seconds(MAX_EVERY_SECONDS),
            default=0.0,
            metavar="SECONDS",
            help="Keep running, refreshing every SECONDS, at most a day (default, or 0: once).",
        )

    @needs_migrated_database
    def handle(self, *args, **options):
        if not conf.get_settings().get("WEATHER_API_URL"):
            raise CommandError("PERSONALIZATION['WEATHER_API_URL'] is not set.")
        regions = self.regions(options["region"])
        if not regions:
            raise CommandError("No regions: set WEATHER_REGIONS or pass --region.")
        while True:
            self.refresh_once(regions)
            if options["every"] <= 0:
                return
            time.sleep(options["every"])

    @staticmethod
    def regions(arguments: list[str]) -> dict[str, str]:
        """The --region arguments (a bare key takes its WEATHER_REGIONS location), else WEATHER_REGIONS."""
        configured = configured_regions()
        requested = parse_regions(arguments)
        if not requested:
            return configured
        return {
            key: configured.get(key, key) if location == key else location
            for key, location in requested.items()
        }

    def refresh_once(self, regions: dict[str, str]) -> None:
        results = refresh_weather(regions, provider=get_provider())
        for key, report in results.items():
            if report is None:
                self.stdout.write(f"{key}: unavailable")
            else:
                self.stdout.write(f"{key}: {report.condition}, {report.temperature_c} °C")
        fetched = sum(report is not None for report in results.values())
        self.stdout.write(f"refreshed {fetched} of {len(results)} regions")
