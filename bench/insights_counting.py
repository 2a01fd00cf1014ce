"""What counting impressions, clicks and conversions for Insights costs the event pipeline (issue 17
item 8: "the counting path adds at most 5% to ingest_events_per_s").

Counting runs in the stream worker, after the events are stored (never in POST /api/events, which
therefore pays nothing for it: bench/ingest.py measures that path). So the figure that can move is
the worker's: events per second from reading the stream to acknowledging it (store the rows, score,
count, acknowledge), with the counting step and, in the same process, with it replaced by a no-op.
The two modes run in interleaved rounds on the same kind of traffic: batches of 20 events from 2,000
consenting visitors (each on one device, in one country, with a favourite category) mixing page
views, impressions and clicks of personalized blocks (with their decision: block, variant, page;
each block on its own page, as on a site), add-to-cart and purchases (the goals conversions are
counted for).

The worker is set up as on a site that uses Insights (the `make demo` one): the demo's 17 segments
(an event also counts under each segment its visitor is in, so the segments are part of what
counting costs) and trained persona and propensity models in a private model directory (the
worker scores the visitors of each batch, which reads their profiles: counting shares that read).
`--without-models` measures a site without trained models, where counting's profile read is its own.

Counting's cost includes its flush: the counters go into the database every 10 s of worker time
(tailored.insights.counting.flush_clock). The bench flushes each time the counting mode has been
busy that long, times it, and adds each event's share of it to the counting mode's time.

The headline, `insights_counting_overhead`, is 1 - (events/s with counting) / (events/s without),
medians of rounds that vary by a third from one to the next, so it moves by a few points from
run to run. `insights_counting_share` measures the same share directly, in the counting mode
alone: the seconds spent inside counting (plus the flushes' share of its events) over that mode's
whole time, summed over its rounds.

Run: .venv/bin/python bench/insights_counting.py [--without-models]
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, on_exit, print_headline, progress, setup_django  # noqa: E402

VISITORS = 2000  # a visitor sends about 2 events a round: far below the rate limit (600 a minute)
BATCH = 20
BATCHES_PER_ROUND = 100  # 2,000 events a round and mode
MIN_ROUNDS, MAX_ROUNDS = 24, 120
FLUSHES = 2  # rounds go on until the counting mode has been flushed this often at the worker's cadence
BLOCKS = {uuid.UUID(int=n).hex: 2 + n // 2 for n in range(1, 9)}  # block -> its page, two to a page
CATEGORIES = ["electronics", "home-kitchen", "outdoors", "books", "fashion", "beauty"]
DEVICES, COUNTRIES = ["desktop", "mobile", "tablet"], ["GB", "DE", "FR"]
SEED = 11


def make_events(rng: random.Random, now: float, favourite: str):
    from tailored.core.types import Event

    events = []
    for n in range(BATCH):
        ts = now - (BATCH - n) * 0.5
        block = rng.choice(list(BLOCKS))
        decision = {"block": block, "variant": rng.choice(["fallback", "electronics", "outdoors"]), "page": BLOCKS[block]}
        kind = rng.choices(["page_view", "impression", "click", "add_to_cart", "purchase"], [40, 35, 15, 7, 3])[0]
        category = favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
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
        events.append(Event(uuid.uuid4().hex, kind, ts=ts, category=category, item=item, attrs=attrs))
    return events


def fill_stream(store, rng: random.Random, visitors: dict) -> int:
    """Record a round's batches as the events endpoint does (profile and stream); outside the timer."""
    from tailored.core.types import Snapshot

    now = time.time()
    for _ in range(BATCHES_PER_ROUND):
        visitor = rng.choice(list(visitors))
        favourite, device, country = visitors[visitor]
        store.record(visitor, make_events(rng, now, favourite), now, Snapshot(device=device, country=country))
    return BATCHES_PER_ROUND * BATCH


def drain_timed(worker, client, consumer) -> tuple[float, int]:
    """Seconds to read, store, count and acknowledge everything waiting; and how many events."""
    events = 0
    started = time.perf_counter()
    while entries := worker.read_new(client, consumer, consumer.batch, block=False):
        events += worker.handle_entries(client, entries).events
    return time.perf_counter() - started, events


def demo_segments() -> int:
    """The demo's segments (fixtures/demo/segments.json), as `load_demo` creates them."""
    from tailored.models import Segment

    for data in json.loads((REPO_ROOT / "fixtures" / "demo" / "segments.json").read_text())["segments"]:
        Segment.objects.get_or_create(slug=data["slug"], defaults=data)
    return Segment.objects.count()


def publish_models(store, visitors: dict, model_dir: Path, rng: random.Random) -> None:
    """Fit persona and propensity models on the bench visitors' profiles and publish them in a
    private model directory, so the worker scores each batch as on a trained site (what the
    models predict does not matter here; that they run, and read profiles, does)."""
    from django.conf import settings

    from tailored import conf
    from tailored.ml import registry
    from tailored.ml.features import (
        FEATURE_WINDOWS,
        PERSONA_FEATURES,
        feature_matrix,
        feature_names,
        select,
    )
    from tailored.ml.personas import fit_personas
    from tailored.ml.propensity import TARGETS, fit_propensity
    from tailored.ml.scoring import PERSONAS, PROPENSITY

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "MODEL_DIR": str(model_dir)}
    conf.get_settings.cache_clear()  # the store stays: the same Redis
    now = time.time()
    profiles = list(store.get_many(list(visitors), now, FEATURE_WINDOWS).values())
    rows = feature_matrix(profiles, now)
    registry.publish(PERSONAS, fit_personas(select(rows, PERSONA_FEATURES), seed=SEED, say=lambda _: None), {})
    ids = [profile.visitor_id for profile in profiles]
    models = {target: fit_propensity(target, rows, [int(rng.random() < 0.3) for _ in rows], ids, feature_names, seed=SEED) for target in TARGETS}
    registry.publish(PROPENSITY, models, {})


def main() -> None:
    with_models = "--without-models" not in sys.argv[1:]
    server, workdir = setup_django("insights-counting")
    from tailored import conf, worker
    from tailored.core.types import Snapshot
    from tailored.insights import counting as insights_counting

    store = conf.get_profile_store()
    client = store.client
    worker.ensure_group(client)
    consumer = worker.Consumer(name="bench", batch=100, block_ms=0)
    rng = random.Random(SEED)
    visitors = {uuid.uuid4().hex: (rng.choice(CATEGORIES), rng.choice(DEVICES), rng.choice(COUNTRIES)) for _ in range(VISITORS)}
    segments = demo_segments()
    progress(f"{segments} segments")
    for visitor, (favourite, device, country) in visitors.items():  # a history, which models are fitted on
        store.record(visitor, make_events(rng, time.time(), favourite), time.time(), Snapshot(device=device, country=country))
    if with_models:
        publish_models(store, visitors, workdir / "models", rng)
        progress("published persona and propensity models: the worker scores every batch")
    drain_timed(worker, client, consumer)  # the warm-up history: stored and counted, not timed
    insights_counting.flush(client)
    worker.settle_heap()  # as `tailored_worker` does after its first turn that stores events
    counting = worker.count_insights
    inside = [0.0]  # seconds spent in count_insights in the counting mode's rounds

    def timed_counting(*args, **kwargs):
        started = time.perf_counter()
        try:
            return counting(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - started

    modes = {"counting": timed_counting, "no_counting": lambda *args, **kwargs: None}
    on_exit(lambda: setattr(worker, "count_insights", counting))
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    flushes: list[tuple[float, int]] = []  # (seconds, events counted since the previous flush)
    busy, since_flush, counting_seconds, counted = 0.0, 0, 0.0, 0
    every = insights_counting.flush_clock.seconds
    progress(f"interleaved rounds of {BATCHES_PER_ROUND * BATCH} events per mode; the counting mode flushes every {every:g} s it is busy")
    round_no = 0
    while round_no < MIN_ROUNDS or (len(flushes) < FLUSHES and round_no < MAX_ROUNDS):
        for mode in (list(modes) if round_no % 2 == 0 else list(reversed(modes))):
            sent = fill_stream(store, rng, visitors)
            worker.count_insights = modes[mode]
            seconds, stored = drain_timed(worker, client, consumer)
            assert stored == sent, f"{mode}: sent {sent}, the worker stored {stored}"
            rates[mode].append(stored / seconds)
            if mode == "counting":
                busy, since_flush = busy + seconds, since_flush + stored
                counting_seconds, counted = counting_seconds + seconds, counted + stored
                if busy >= every:  # the worker's cadence, in the time the worker spent counting
                    started = time.perf_counter()
                    insights_counting.flush(client)
                    flushes.append((time.perf_counter() - started, since_flush))
                    busy, since_flush = 0.0, 0
        round_no += 1
        if round_no % 8 == 0:
            progress(f"round {round_no}: " + ", ".join(f"{m} {statistics.median(r):,.0f} events/s" for m, r in rates.items())
                     + f"; {len(flushes)} flushes")
    worker.count_insights = counting
    assert flushes, "the counting mode was never busy long enough to flush: more rounds are needed"
    flush_per_event = sum(s for s, _ in flushes) / sum(n for _, n in flushes)
    with_counting = 1 / (1 / statistics.median(rates["counting"]) + flush_per_event)
    # The same share measured directly: the time inside counting (and the flushes' share of its
    # events) over the counting mode's whole time, summed over its rounds; no difference of two
    # noisy rates, so it moves far less from run to run.
    flushed = flush_per_event * counted
    counting_share = (inside[0] + flushed) / (counting_seconds + flushed)
    without = statistics.median(rates["no_counting"])
    progress("flushes: " + ", ".join(f"{s * 1000:.0f} ms for {n:,} events" for s, n in flushes))
    from tailored.models import InsightHour

    assert InsightHour.objects.exists(), "the counting mode counted nothing: the bench measured no counting"
    print_headline({
        "models": "trained" if with_models else "none",
        "segments": segments,
        "worker_events_per_s_with_counting": with_counting,
        "worker_events_per_s_without_counting": without,
        "insights_flush_ms": statistics.median(s for s, _ in flushes) * 1000,
        "insights_counting_share": counting_share,
        "insights_counting_overhead": 1 - with_counting / without,
    })
    server.stop()


if __name__ == "__main__":
    main()
