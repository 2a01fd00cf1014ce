"""The insight flush is exactly once when a real worker process is killed (SIGKILL) after the
flush committed its rows and before it forgot the batch in Redis (issue 17 item 7): the restarted
worker finds the batch recorded, only forgets it, and counts nothing twice."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tailored import worker
from tailored.events.stream import STREAM_KEY, encode_batch
from tailored.insights import counting
from tests.events.test_worker import PYTHON, ROOT, wait_for, worker_env, workers  # noqa: F401 (a fixture)
from tests.helpers import HOME_BLOCK
from tests.insights.test_counting import click, impression

VISITORS = 5


@pytest.fixture
def insight_db(tmp_path) -> Path:
    """A SQLite file the worker processes and the test share (the pytest database is this
    process's only): the plugin's and the experiments' tables (flush batches live there)."""
    path = tmp_path / "db.sqlite3"
    for app in ("tailored_experiments", "tailored"):
        subprocess.run([PYTHON, "manage.py", "migrate", app, "-v0"], cwd=ROOT, env=worker_env(path, ""), check=True)
    return path


@pytest.fixture
def start(redis_url, insight_db, tmp_path, monkeypatch, request):
    """Starts `tailored_worker` processes (reaped by test_worker's `workers` fixture), each dying
    at `crash_at` if given."""
    start_worker = request.getfixturevalue("workers")

    def start(name: str, crash_at: str = "") -> subprocess.Popen:
        monkeypatch.setenv("TAILORED_CRASH_AT", crash_at)  # worker_env copies the environment
        return start_worker(insight_db, redis_url, tmp_path / f"{name}.log", "--name", name)

    return start


def impressions_in(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        (total,) = conn.execute(
            "SELECT COALESCE(SUM(impressions), 0) FROM tailored_insighthour WHERE segment = '' AND block = ?", (HOME_BLOCK,)
        ).fetchone()
    return total


def enqueue(client, first: int) -> None:
    """One impression and a click for each visitor, as the events API appends them."""
    now = time.time()
    for n in range(first, first + VISITORS):
        events = [impression(f"i{n}", now - 20), click(f"c{n}", now - 10)]
        client.xadd(STREAM_KEY, encode_batch(f"{n:032d}", events))


def test_a_worker_killed_after_the_flush_commit_counts_nothing_twice(redis_client, insight_db, start):
    worker.ensure_group(redis_client)
    enqueue(redis_client, 0)
    crashed = start("crashing", crash_at="insights-flush-after-commit")
    assert crashed.wait(60) == -9, "the worker was meant to die at the crash point"
    assert impressions_in(insight_db) == VISITORS  # the rows are committed...
    assert redis_client.exists(counting.TAKING_KEY)  # ...and the batch is still in Redis

    enqueue(redis_client, VISITORS)  # more counted while no worker runs
    restarted = start("restarted")
    wait_for(lambda: impressions_in(insight_db) == 2 * VISITORS and not redis_client.exists(counting.TAKING_KEY),
             30, "the restarted worker to flush")
    time.sleep(1)  # a few more turns: nothing more may arrive
    restarted.terminate()
    assert restarted.wait(10) == 0
    assert impressions_in(insight_db) == 2 * VISITORS
    assert not redis_client.exists(counting.ADDS_KEY)
