"""Progress for long commands (`tailored_train`, `tailored_evaluate`, the demo's `load_demo`):
never silent for a minute, with an estimate of the time left (issue 16 item 6)."""

from __future__ import annotations

import time
from collections.abc import Callable

Say = Callable[[str], None]


class Progress:
    """Says `what: done/total (pct%), about N s left` at every tenth of the work, so a long command
    is never silent for a minute (issue 16 item 6). The estimate is the pace so far."""

    def __init__(self, what: str, total: int, say: Say, steps: int = 10):
        self.what, self.total, self.say = what, total, say
        self.every = max(1, total // steps)
        self.next_at = self.every
        self.started = time.perf_counter()

    def __call__(self, done: int) -> None:
        """`done` of `total` are done: says so when it passed the next tenth (work done in chunks
        may jump past one) or finished."""
        if self.total <= 0 or (done < self.next_at and done != self.total):
            return
        self.next_at = (done // self.every + 1) * self.every
        elapsed = time.perf_counter() - self.started
        left = elapsed / done * (self.total - done) if done else 0.0
        self.say(f"  {self.what}: {done}/{self.total} ({100 * done // self.total}%), about {left:.0f} s left")
