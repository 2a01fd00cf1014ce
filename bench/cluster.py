"""Redis Cluster, measured (issue 19 item 4).

Starts a 3-master Redis Cluster (tests.cluster.servers, no replicas) and a single-node Redis on
loopback, a throwaway SQLite database, and measures:

1. Ingestion end to end, with EVENT_STREAM_SHARDS = 1 and then 3: gunicorn (2 workers, the
   machine has 2 cores) serves POST /api/events from client threads, N `tailored_worker`
   processes (N = the shard count) store the events; a bounded load (BATCHES batches of 20
   events over VISITORS visitors). `cluster_ingest_events_per_s_<n>_shard(s)` is the events the
   API accepted over the time from the first POST until the workers had stored the last of them
   (Event rows); `cluster_events_lost` is accepted minus stored, both phases together.
   Then the workers alone: they are paused (SIGSTOP), DRAIN_BATCHES batches are appended to the
   shards in-process (the store's own path), and `cluster_drain_events_per_s_<n>...` is how fast
   the N resumed workers store them. A control run drains 1 shard with 3 workers: what the
   extra processes bring without the extra shards.
2. `services.resolve_visitor` in-process (50 segments, a profile of 200 page views, the
   bench/resolve_visitor.py set-up) on the cluster with 3 shards and on the single node, in
   alternating blocks so both see the same machine.
3. `profile_bytes_median`: MEMORY USAGE of every key of a visitor (profile, seen items, trigger
   state), summed per visitor, over 100 visitors of the 3-shard phase (100 mixed events each).

Everything runs on the same 2 cores: the Redis nodes, gunicorn, the workers and the clients.
Every process it starts is stopped at exit (SIGTERM included).

Run: .venv/bin/python bench/cluster.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CONSENT_COOKIE_VALUE,
    DESKTOP_CHROME_UA,
    REPO_ROOT,
    Summary,
    ensure_repo_on_path,
    free_port,
    on_exit,
    percentile,
    print_headline,
    progress,
    setup_django,
    signed_visitor_id,
)

BATCH = 20
BATCHES = 1000  # per phase: 20,000 events over HTTP
DRAIN_BATCHES = 2000  # and 40,000 appended in-process for the workers alone
VISITORS = 200  # five batches each: 100 events, below the rate limit (600 a minute)
CLIENT_THREADS = 4
GUNICORN_WORKERS = 2
SHARD_COUNTS = (1, 3)
DRAIN_TIMEOUT_SECONDS = 45.0
RESOLVE_BLOCKS, RESOLVE_PER_BLOCK = 6, 300
SEED = 19


def start_cluster():
    ensure_repo_on_path()
    from tests.cluster.servers import LocalCluster

    cluster = LocalCluster(masters=3, replicas=0, prefix="tl-bench-cluster-")
    on_exit(cluster.close)  # before start: a half-started cluster is reaped too
    return cluster.start()


def app_env(redis_url: str, shards: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cms.settings.test",
        "SQLITE_PATH": os.environ["SQLITE_PATH"],
        "REDIS_URL": redis_url,
        "EVENT_STREAM_SHARDS": str(shards),
        "PYTHONPATH": str(REPO_ROOT),
    }


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def start_gunicorn(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    import httpx

    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "--workers", str(GUNICORN_WORKERS), "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
         "cms.wsgi:application"],
        cwd=REPO_ROOT, env=env,
    )
    on_exit(lambda: stop(process))
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/me/data", timeout=1.0)
            return process, port
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def start_workers(count: int, env: dict[str, str], client, streams: list[str], first: int = 0) -> list[subprocess.Popen]:
    """`count` more tailored_worker processes (named from `first` on); returns once every worker
    has joined every shard's group."""
    workers = []
    for n in range(first, first + count):
        process = subprocess.Popen(
            [sys.executable, "manage.py", "tailored_worker", "--name", f"bench-{n}", "--block-ms", "200"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        on_exit(lambda process=process: stop(process))
        workers.append(process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if all(len(client.xinfo_consumers(stream, "tl-workers")) >= first + count for stream in streams):
                return workers
        except Exception:  # the group is not there yet
            pass
        time.sleep(0.1)
    raise RuntimeError("the workers did not join the consumer groups")


def make_batch(rng: random.Random, now_ms: int, prefix: str) -> list[dict]:
    kinds = [
        ("page_view", lambda: {"product_id": rng.randint(1, 500), "category": rng.choice(["books", "outdoors", "electronics"]), "page_type": "product"}),
        ("click", lambda: {"target": rng.choice(["hero", "cta", "nav"])}),
        ("scroll_depth", lambda: {"depth": rng.choice([25, 50, 75, 100])}),
        ("add_to_cart", lambda: {"product_id": rng.randint(1, 500)}),
        ("search", lambda: {"query": rng.choice(["tent", "headphones", "novel"])}),
    ]
    batch = []
    for n in range(BATCH):
        kind, fields = rng.choices(kinds, weights=[10, 4, 3, 1, 1])[0]
        batch.append({"type": kind, "id": f"{prefix}-{n}", "ts": now_ms - rng.randint(0, 60_000), **fields()})
    return batch


def post_load(port: int, visitors: list[str], rng: random.Random) -> dict:
    """BATCHES batches from CLIENT_THREADS threads; what was accepted (202), refused, and each
    POST's time."""
    import httpx

    now_ms = int(time.time() * 1000)
    bodies = [json.dumps({"events": make_batch(rng, now_ms, uuid.uuid4().hex[:12])}) for _ in range(BATCHES)]
    cookies = [signed_visitor_id(visitor) for visitor in visitors]
    counter, lock = iter(range(BATCHES)), threading.Lock()
    accepted, statuses, latencies = [0] * CLIENT_THREADS, [], []

    def client_thread(index: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"User-Agent": DESKTOP_CHROME_UA, "Content-Type": "application/json"}) as client:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                started = time.perf_counter()
                response = client.post("/api/events", content=bodies[n],
                                       cookies={"tl_consent": CONSENT_COOKIE_VALUE, "tl_vid": cookies[n % len(visitors)]})
                latencies.append((time.perf_counter() - started) * 1000)
                statuses.append(response.status_code)
                if response.status_code == 202:
                    accepted[index] += BATCH

    threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"accepted": sum(accepted), "refused": sum(1 for s in statuses if s != 202), "latencies": latencies}


def stored_events(visitors: list[str]) -> int:
    from tailored.models import Event

    return Event.objects.filter(visitor_id__in=visitors).count()


def ingest_phase(cluster, shards: int, rng: random.Random) -> dict:
    """One shard count: gunicorn and N workers on the emptied cluster, the load, the drain."""
    import redis

    from tailored.events.stream import stream_keys

    cluster.flush()
    env = app_env(cluster.url, shards)
    gunicorn, port = start_gunicorn(env)
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.ports[0], decode_responses=True)
    workers = start_workers(shards, env, client, stream_keys(shards))
    visitors = [uuid.uuid4().hex for _ in range(VISITORS)]
    progress(f"{shards} shard(s): gunicorn ({GUNICORN_WORKERS} workers) and {shards} tailored_worker(s) ready; posting {BATCHES} batches")
    started = time.perf_counter()
    load = post_load(port, visitors, rng)
    posted = time.perf_counter() - started
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while (stored := stored_events(visitors)) < load["accepted"] and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    progress(f"{shards} shard(s): accepted {load['accepted']} events ({load['refused']} batches refused) in {posted:.2f} s; "
             f"stored {stored} after {elapsed:.2f} s")
    stop(gunicorn)
    sizes = profile_sizes(client, visitors[:100])
    drain = drain_phase(cluster, shards, workers, rng)
    control = None
    if shards == 1:  # the control: as many workers as the 3-shard phase, on the one stream
        workers += start_workers(2, env, client, stream_keys(shards), first=1)
        control = drain_phase(cluster, shards, workers, rng)
    for process in workers:
        stop(process)
    client.close()
    return {"shards": shards, "accepted": load["accepted"], "stored": stored, "refused": load["refused"],
            "per_s": load["accepted"] / elapsed, "api_per_s": load["accepted"] / posted, "drain": drain, "control": control,
            "post": Summary.of(f"POST /api/events ({shards} shard{'s' if shards > 1 else ''})", load["latencies"]),
            "profile_bytes": sizes}


def drain_phase(cluster, shards: int, workers: list[subprocess.Popen], rng: random.Random) -> dict:
    """The workers alone: paused while DRAIN_BATCHES batches go into the shards, then timed until
    every event is stored."""
    import signal

    from django.conf import settings
    from django.test.utils import override_settings

    from tailored import conf
    from tailored.events.schema import validate_events

    for process in workers:
        process.send_signal(signal.SIGSTOP)
    visitors = [uuid.uuid4().hex for _ in range(VISITORS * 5)]  # 2 batches each, under the rate limit
    now = time.time()
    with override_settings(PERSONALIZATION={**settings.PERSONALIZATION, "REDIS_URL": cluster.url, "EVENT_STREAM_SHARDS": shards}):
        store = conf.get_profile_store()
        for n in range(DRAIN_BATCHES):
            events, _ = validate_events(make_batch(rng, int(now * 1000), uuid.uuid4().hex[:12]), now)
            store.record(visitors[n % len(visitors)], events, now)
        store.client.close()
    expected = DRAIN_BATCHES * BATCH
    started = time.perf_counter()
    for process in workers:
        process.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while (stored := stored_events(visitors)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    progress(f"{shards} shard(s): {len(workers)} worker(s) stored {stored} of {expected} waiting events in {elapsed:.2f} s")
    return {"appended": expected, "stored": stored, "per_s": stored / elapsed}


def profile_sizes(client, visitors: list[str]) -> list[int]:
    """Bytes Redis holds per visitor (MEMORY USAGE of each of their keys, summed)."""
    from tailored import seen_items
    from tailored.activation.triggers import state_key
    from tailored.profiles.redis import visitor_keys

    sizes = []
    for visitor in visitors:
        keys = [*visitor_keys(visitor).values(), seen_items.key(visitor), state_key(visitor)]
        sizes.append(sum(client.memory_usage(key) or 0 for key in keys))
    return sizes


def load_resolve_bench():
    """bench/resolve_visitor.py as a module: its segments, profile and request set-up."""
    spec = importlib.util.spec_from_file_location("bench_resolve_visitor", Path(__file__).with_name("resolve_visitor.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve_samples(cluster, single_url: str, rng: random.Random) -> dict[str, list[float]]:
    """resolve_visitor on each store, in alternating blocks (the first calls of a block, which
    connect, are not timed)."""
    from django.conf import settings
    from django.test.utils import override_settings

    from tailored import services

    resolve_bench = load_resolve_bench()
    resolve_bench.create_segments(rng)
    targets = {
        "cluster": {**settings.PERSONALIZATION, "REDIS_URL": cluster.url, "EVENT_STREAM_SHARDS": 3},
        "single_node": {**settings.PERSONALIZATION, "REDIS_URL": single_url, "EVENT_STREAM_SHARDS": 1},
    }
    visitor_id = uuid.UUID(int=rng.getrandbits(128)).hex
    factory = resolve_bench.make_request_factory(visitor_id)
    for name, personalization in targets.items():
        with override_settings(PERSONALIZATION=personalization):
            stored = resolve_bench.record_profile(random.Random(SEED), factory)
            progress(f"resolve: recorded {stored} page views for the visitor on the {name} store")
    samples: dict[str, list[float]] = {name: [] for name in targets}
    clock = time.perf_counter_ns
    for _block in range(RESOLVE_BLOCKS):
        for name, personalization in targets.items():
            with override_settings(PERSONALIZATION=personalization):
                for _ in range(30):
                    services.resolve_visitor(factory.get("/"))
                for _ in range(RESOLVE_PER_BLOCK):
                    request = factory.get("/")
                    start = clock()
                    visitor = services.resolve_visitor(request)
                    samples[name].append((clock() - start) / 1e6)
                    assert visitor.profile.page_views == resolve_bench.EVENTS, visitor.profile
    return samples


def main() -> None:
    single, _workdir = setup_django("tl-bench-cluster-")
    progress("starting a 3-master Redis Cluster")
    cluster = start_cluster()
    progress(f"cluster ready: {cluster.url}")
    rng = random.Random(SEED)
    phases = {shards: ingest_phase(cluster, shards, rng) for shards in SHARD_COUNTS}
    progress("resolve_visitor: cluster (3 shards) and single node, alternating blocks")
    samples = resolve_samples(cluster, single.url, rng)
    one, three = phases[1], phases[3]
    drains = [drain for phase in phases.values() for drain in (phase["drain"], phase["control"]) if drain]
    lost = sum(phase["accepted"] - phase["stored"] for phase in phases.values()) + sum(d["appended"] - d["stored"] for d in drains)

    print()
    print(f"machine: {os.cpu_count()} cores; everything (3 Redis masters, 1 Redis, gunicorn, workers, clients) shares them")
    for phase in phases.values():
        print(phase["post"].line())
        print(f"  ingest {phase['shards']} shard(s): {phase['per_s']:,.0f} events/s end to end (accepted and stored), "
              f"API alone {phase['api_per_s']:,.0f} events/s; {phase['accepted']} accepted, {phase['stored']} stored; "
              f"workers alone {phase['drain']['per_s']:,.0f} events/s")
    for name, values in samples.items():
        print(Summary.of(f"resolve_visitor {name}", values).line())
    sizes = three["profile_bytes"]
    print(f"  control: 1 shard, 3 workers: {one['control']['per_s']:,.0f} events/s (workers alone)")
    print(f"  profile bytes over {len(sizes)} visitors of {BATCHES * BATCH // VISITORS} events: median {statistics.median(sizes):,.0f}, "
          f"p99 {percentile(sizes, 99):,.0f}")
    cluster_ms, single_ms = statistics.median(samples["cluster"]), statistics.median(samples["single_node"])
    print_headline({
        "cluster_ingest_events_per_s_1_shard": round(one["per_s"]),
        "cluster_ingest_events_per_s_3_shards": round(three["per_s"]),
        "cluster_shard_speedup": three["per_s"] / one["per_s"],
        "cluster_drain_events_per_s_1_shard": round(one["drain"]["per_s"]),
        "cluster_drain_events_per_s_3_shards": round(three["drain"]["per_s"]),
        "cluster_drain_speedup": three["drain"]["per_s"] / one["drain"]["per_s"],
        "cluster_drain_events_per_s_1_shard_3_workers": round(one["control"]["per_s"]),
        "cluster_resolve_visitor_median_ms": cluster_ms,
        "single_node_resolve_visitor_median_ms": single_ms,
        "cluster_resolve_over_single_node": cluster_ms / single_ms,
        "cluster_events_lost": lost,
        "profile_bytes_median": round(statistics.median(sizes)),
    })


if __name__ == "__main__":
    main()
