"""Reports -> Personalization insights over a big site: 50 blocks x 4 variants x 20 segments (and
"every visitor") x 3 devices, 90 days of traffic as the worker's flush stores it: daily rows for
90 days (1,134,000) and hourly rows for the last 2 days (604,800; the report reads only daily
rows, the alerts read hourly ones). Country is left out (one value), pages are ids only.

Measures the whole admin view (queries, figures, SVG, template) through Django's test client, as
an editor opens it: the default view (every visitor, last 7 days), a 90-day range, one segment
and one device, and the CSV export. Prints `key: value` lines.

Run: .venv/bin/python bench/insights.py
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta

from _common import print_headline, progress, setup_django

BLOCKS, VARIANTS, SEGMENTS, DEVICES, DAYS, HOURLY_DAYS = 50, 4, 20, ("desktop", "mobile", "tablet"), 90, 2
RUNS = 15
SEED = 17


def cells():
    for b in range(BLOCKS):
        for v in range(VARIANTS):
            variant = "fallback" if v == 0 else f"variant-{b}-{v}"
            for segment in ["", *(f"segment-{s}" for s in range(SEGMENTS))]:
                for device in DEVICES:
                    yield 1000 + b // 2, f"block-{b:03d}", variant, segment, device


def fill(today) -> tuple[int, int]:
    """Insert the rows with executemany (as fast as SQLite takes them); returns (daily, hourly)."""
    from django.db import connection, transaction

    from tailored.models import InsightDay, InsightHour

    rng = random.Random(SEED)
    columns = "page_id, block, variant, segment, device, country, impressions, viewers, clicks, conversions, last_touch_conversions, view_ms"
    daily_sql = f"INSERT INTO {InsightDay._meta.db_table} ({columns}, day) VALUES ({', '.join(['%s'] * 13)})"
    hourly_sql = f"INSERT INTO {InsightHour._meta.db_table} ({columns}, hour) VALUES ({', '.join(['%s'] * 13)})"
    all_cells = list(cells())
    daily = hourly = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for d in range(DAYS):
            day = today - timedelta(days=DAYS - 1 - d)
            rows = []
            for page, block, variant, segment, device in all_cells:
                n = rng.randint(200, 2000) if not segment else rng.randint(10, 200)
                c = int(n * rng.uniform(0.02, 0.08))
                rows.append((page, block, variant, segment, device, "", n, int(n * 0.8), c, c // 5, c // 8, n * 2500, day))
            cursor.executemany(daily_sql, rows)
            daily += len(rows)
        start = datetime.combine(today, datetime.min.time(), tzinfo=UTC) - timedelta(days=HOURLY_DAYS - 1)
        for h in range(HOURLY_DAYS * 24):
            hour = (start + timedelta(hours=h)).isoformat()
            rows = [(p, b, v, s, dv, "", 60, 50, 3, 1, 0, 150_000, hour) for p, b, v, s, dv in all_cells]
            cursor.executemany(hourly_sql, rows)
            hourly += len(rows)
    return daily, hourly


def timed(client, url: str, runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(samples)


def main() -> None:
    setup_django("tailored-bench-insights-")
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    today = timezone.now().date()
    progress(f"inserting {len(list(cells())) * DAYS:,} daily and {len(list(cells())) * HOURLY_DAYS * 24:,} hourly rows")
    started = time.perf_counter()
    daily, hourly = fill(today)
    progress(f"inserted in {time.perf_counter() - started:.0f} s; ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    first = client.get("/admin/insights/")
    assert first.status_code == 200 and first.content.count(b"data-tl-block=") == BLOCKS, "the report must list every block"
    progress("timing the report")
    ninety = f"?start={today - timedelta(days=DAYS - 1)}&end={today}"
    figures = {
        "insights_report_ms": round(timed(client, "/admin/insights/"), 1),
        "insights_report_90_days_ms": round(timed(client, "/admin/insights/" + ninety, runs=7), 1),
        "insights_report_segment_ms": round(timed(client, "/admin/insights/?segment=segment-3"), 1),
        "insights_report_device_ms": round(timed(client, "/admin/insights/?device=mobile"), 1),
        "insights_csv_ms": round(timed(client, "/admin/insights/?format=csv", runs=7), 1),
        "daily_rows": daily,
        "hourly_rows": hourly,
        "blocks": BLOCKS,
        "variants_per_block": VARIANTS,
        "segments": SEGMENTS,
        "devices": len(DEVICES),
        "database": "sqlite",
        "load_average_1m": os.getloadavg()[0],
    }
    print_headline(figures)
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
