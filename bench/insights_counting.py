"""What counting impressions, clicks and conversions for Insights costs the event pipeline (issue 17
item 8: "the counting path adds at most 5% to ingest_events_per_s").

Counting runs in the stream worker, after the events are stored (never in POST /api/events, which
therefore pays nothing for it: bench/ingest.py measures that path). So the figure that can move is
the worker's: events per second from reading the stream to acknowledging it (store the rows, score,
count, acknowledge), with the counting step and, in the same process, with it replaced by a no-op.
The two modes run in interleaved rounds on the same kind of traffic: batches of 20 events from 400
consenting visitors mixing page views, impressions and clicks of personalized blocks (with their
decision: block, variant, page), add-to-cart and purchases (the goals conversions are counted for).

Run: .venv/bin/python bench/insights_counting.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import on_exit, print_headline, progress, setup_django  # noqa: E402

VISITORS = 400
BATCH = 20
BATCHES_PER_ROUND = 60  # 1,200 events a round and mode
ROUNDS = 16
BLOCKS = [uuid.UUID(int=n).hex for n in range(1, 9)]
SEED = 11


def make_events(rng: random.Random, now: float):
    from tailored.core.types import Event

    events = []
    for n in range(BATCH):
        ts = now - (BATCH - n) * 0.5
        block, page = rng.choice(BLOCKS), rng.randint(2, 40)
        decision = {"block": block, "variant": rng.choice(["fallback", "electronics", "outdoors"]), "page": page}
        kind = rng.choices(["page_view", "impression", "click", "add_to_cart", "purchase"], [40, 35, 15, 7, 3])[0]
        attrs: dict = {}
        item = None
        if kind == "page_view":
            attrs, item = {"page_type": "product"}, str(rng.randint(1, 500))
        elif kind == "impression":
            attrs = {**decision, "seconds": round(rng.uniform(1, 20), 2)}
        elif kind == "click":
            attrs = {**decision, "target": "cta"}
        elif kind == "add_to_cart":
            attrs, item = {"quantity": 1}, str(rng.randint(1, 500))
        else:
            attrs = {"order_id": uuid.uuid4().hex[:16], "value": round(rng.uniform(5, 200), 2)}
        events.append(Event(uuid.uuid4().hex, kind, ts=ts, category="electronics", item=item, attrs=attrs))
    return events


def fill_stream(store, rng: random.Random, visitors: list[str]) -> int:
    """Record a round's batches as the events endpoint does (profile and stream); outside the timer."""
    now = time.time()
    for _ in range(BATCHES_PER_ROUND):
        store.record(rng.choice(visitors), make_events(rng, now), now)
    return BATCHES_PER_ROUND * BATCH


def drain_timed(worker, client, consumer) -> tuple[float, int]:
    """Seconds to read, store, count and acknowledge everything waiting; and how many events."""
    events = 0
    started = time.perf_counter()
    while entries := worker.read_new(client, consumer, consumer.batch, block=False):
        events += worker.handle_entries(client, entries).events
    return time.perf_counter() - started, events


def main() -> None:
    server, _workdir = setup_django("insights-counting")
    from tailored import conf, worker

    store = conf.get_profile_store()
    client = store.client
    worker.ensure_group(client)
    consumer = worker.Consumer(name="bench", batch=100, block_ms=0)
    counting = worker.count_insights
    modes = {"counting": counting, "no_counting": lambda *args, **kwargs: None}
    on_exit(lambda: setattr(worker, "count_insights", counting))
    rng = random.Random(SEED)
    visitors = [uuid.uuid4().hex for _ in range(VISITORS)]
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    progress(f"{ROUNDS} interleaved rounds of {BATCHES_PER_ROUND * BATCH} events per mode")
    for round_no in range(ROUNDS):
        order = list(modes) if round_no % 2 == 0 else list(reversed(modes))
        for mode in order:
            sent = fill_stream(store, rng, visitors)
            worker.count_insights = modes[mode]
            seconds, stored = drain_timed(worker, client, consumer)
            assert stored == sent, f"{mode}: sent {sent}, the worker stored {stored}"
            rates[mode].append(stored / seconds)
        if (round_no + 1) % 4 == 0:
            progress(f"round {round_no + 1}/{ROUNDS}: " + ", ".join(f"{m} {statistics.median(r):,.0f} events/s" for m, r in rates.items()))
    worker.count_insights = counting
    with_counting, without = statistics.median(rates["counting"]), statistics.median(rates["no_counting"])
    from tailored.insights.counting import shard_prefixes

    counters = sum(client.hlen(prefix + "hours") for prefix in shard_prefixes())
    assert counters, "the counting mode counted nothing: the bench measured no counting"
    progress(f"{counters} hourly insight counters were written by the counting rounds")
    print_headline({
        "worker_events_per_s_with_counting": with_counting,
        "worker_events_per_s_without_counting": without,
        "insights_counting_overhead": 1 - with_counting / without,
    })
    server.stop()


if __name__ == "__main__":
    main()
