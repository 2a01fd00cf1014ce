"""tracker.js without a browser: it stays small, parses, and knows every event type the server
accepts (a type added to the registry without tracker support fails here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tailored.conf import DEFAULTS
from tailored.events.schema import EVENT_TYPES

TRACKER = Path(__file__).parents[2] / "frontend" / "static" / "tailored" / "tracker.js"
# Event types that enter only on the server, through services.record_events.
SERVER_SIDE = {"purchase"}


def test_the_tracker_stays_under_8_5_kib_unminified():
    # 8 KiB until page views carried page ids and remembered parameters (issue 18; README).
    assert len(TRACKER.read_bytes()) < 8.5 * 1024


def test_the_tracker_sends_every_client_side_event_type():
    source = TRACKER.read_text()
    named = set(re.findall(r'"([a-z_]+)"', source)) & set(EVENT_TYPES)
    assert named == set(EVENT_TYPES) - SERVER_SIDE


def test_the_tracker_respects_the_batch_limits_of_the_endpoint():
    source = TRACKER.read_text()
    assert f"events.length <= {DEFAULTS['MAX_BATCH_EVENTS']}" in source
    assert "size < 6e4" in source and DEFAULTS["MAX_BATCH_BYTES"] > 6e4


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_tracker_is_valid_javascript():
    result = subprocess.run(
        ["node", "--check", str(TRACKER)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
