"""Experiment assignment throughput in one process: tailored.core.bucketing.assign.

Standalone (no Django, no Redis): `.venv/bin/python bench/assign.py`. Measures a three-arm
experiment inside a layer with partial traffic and a holdout, so every draw (four hashes) is
taken (`assign_per_s`), and a plain two-arm experiment (one hash), against a
baseline in the same process: one bare `hashlib.sha256(...).digest()` of the same-sized input.
The last lines are `key: value`; budget: assign_per_s >= 200,000.
"""

from __future__ import annotations

import gc
import hashlib
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# bench/ first on sys.path would let bench/graphql.py shadow graphql-core; nothing here needs it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO_ROOT / "bench"]
sys.path.insert(0, str(REPO_ROOT))

from tailored.core.bucketing import Arm, ExperimentSpec, assign  # noqa: E402

VISITORS = [f"3f2a9c1e-8d4b-4f6a-9e2d-{i:012x}" for i in range(200_000)]
ROUNDS = 5
SAMPLE_CALLS = 100_000
BUDGET_PER_S = 200_000

SPEC = ExperimentSpec(
    key="checkout-cta",
    seed="checkout-cta-2026",
    arms=(Arm("control", 2), Arm("green", 1), Arm("red", 1)),
    traffic=0.99,
    holdout=0.05,
    layer="checkout",
    layer_range=(0.0, 0.99),
)
# The common case: no layer, full traffic, no holdout, so one draw.
SIMPLE = ExperimentSpec(key="hero", seed="hero-2026", arms=(Arm("control"), Arm("b")))


def throughput(call, items) -> float:
    """Calls per second over the best of ROUNDS passes (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for item in items:
            call(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def per_call_ns(call, items) -> list[int]:
    """Each call timed on its own; includes about one perf_counter_ns of overhead."""
    clock = time.perf_counter_ns
    samples = []
    for item in items:
        start = clock()
        call(item)
        samples.append(clock() - start)
    return samples


def main() -> None:
    gc.disable()  # the loops allocate only short-lived strings; collections would be noise
    assign_one = lambda visitor: assign(SPEC, visitor)  # noqa: E731
    sha = hashlib.sha256
    baseline_one = lambda visitor: sha(f"{SPEC.seed}:{visitor}".encode()).digest()  # noqa: E731
    assign_rate = throughput(assign_one, VISITORS)
    simple_rate = throughput(lambda visitor: assign(SIMPLE, visitor), VISITORS)
    baseline_rate = throughput(baseline_one, VISITORS)
    samples = sorted(per_call_ns(assign_one, VISITORS[:SAMPLE_CALLS]))
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"visitors: {len(VISITORS)}  rounds: {ROUNDS} (best)  python: {sys.version.split()[0]}")
    print(f"assign_one_draw_per_s: {simple_rate:.0f}")
    print(f"assign_per_s: {assign_rate:.0f}")
    print(f"baseline_sha256_per_s: {baseline_rate:.0f}")
    print(f"assign_one_draw_vs_one_sha256_ratio: {baseline_rate / simple_rate:.2f}")
    print(f"assign_vs_one_sha256_ratio: {baseline_rate / assign_rate:.2f}")
    print(f"assign_median_us: {statistics.median(samples) / 1000:.3f}")
    print(f"assign_p99_us: {p99 / 1000:.3f}")
    print(f"budget_assign_per_s: {BUDGET_PER_S}")
    print(f"within_budget: {assign_rate >= BUDGET_PER_S}")


if __name__ == "__main__":
    main()
