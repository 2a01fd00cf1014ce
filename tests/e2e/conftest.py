"""Browser journeys: Debian's Chromium driven by Playwright against pytest-django's live server."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

# Playwright's sync API runs an event loop in this thread; Django must still allow ORM calls here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# Playwright's 5 s default for `expect` is too short for the admin's preview pane on a busy 2-core
# machine (`make test-under-load`): 20 s. A thing that never appears still fails, just later.
expect.set_options(timeout=20_000)

CHROMIUM = "/usr/bin/chromium"
# Headless Chromium announces itself as "HeadlessChrome", which Tailored (rightly) treats as a bot.
DESKTOP_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
CHROMIUM_ARGS = [
    # Beacons sent while a page unloads carry the browser's own User-Agent, not the context's.
    f"--user-agent={DESKTOP_CHROME}",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "user_agent": DESKTOP_CHROME}


@pytest.fixture
def site_url(live_server, use_redis_store) -> str:
    """The live demo shop on a real Redis profile store. Each journey's database is flushed at
    teardown, so the demo is loaded again (load_demo is idempotent and rebuilds the tree)."""
    call_command("load_demo", stdout=io.StringIO())
    return live_server.url
