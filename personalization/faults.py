"""Crash points for the process-level crash tests (issue 17 item 7, "flush exactly once under a
worker crash").

A process started with `TAILORED_CRASH_AT=<point>` kills itself with SIGKILL when it reaches that
point: no `finally`, no atexit, no signal handler runs, as under the OOM killer or a power cut.
Unset (always, outside those tests) a point costs one string comparison.
"""

from __future__ import annotations

import os
import signal

_CRASH_AT = os.environ.get("TAILORED_CRASH_AT", "")


def crash_point(name: str) -> None:
    if name == _CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)
