"""Event ingestion throughput into a real Redis.

1. The service path as the events endpoint runs it, all inside the timer: `read_batch` (JSON),
   `validate_events` and `services.record_events` (dedup and the per-visitor rate limit at its
   default, in the store's script) for batches of 20 events (tracker.js flushes at 20; mixed
   types, 1,000 visitors, each under the rate limit): `ingest_events_per_s`. Baselines in the
   same run: the same batches through parse + validate only, and a bare pipeline of one XADD per
   batch (the least a durable append can cost, given the body as it came).
   `ingest_over_xadd_ratio` is, as issue 21 item 7 defines it, events/s through `record_events`
   (timed on its own within the same loop: the batch is already parsed and validated, as the
   XADD's body is a given) over events/s of that XADD pipeline (target at least 0.2).
   `ingest_service_over_xadd_ratio` divides the whole service path (parse, validation and
   record_events) by the same XADD: the stricter figure reported before 7 December.
2. Over HTTP: POST /api/events through gunicorn with 2 workers on loopback, from 8 client threads.

Both report how many events were sent and how many the store holds afterwards (counted from the
profiles' per-type totals and the stream); the two must be equal.

Run: .venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import json
import os
import random
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
    free_port,
    on_exit,
    print_headline,
    progress,
    setup_django,
    signed_visitor_id,
)

BATCH = 20  # tracker.js sends a batch every 20 events (or sooner)
VISITORS = 1000
SERVICE_BATCHES = 5000  # 100,000 events, 100 per visitor: within the default 600 a minute
HTTP_SECONDS = 10.0
HTTP_THREADS = 8
SEED = 7


def make_batch(rng: random.Random, now_ms: int) -> list[dict]:
    kinds = [
        ("page_view", lambda: {"product_id": rng.randint(1, 500), "category": rng.choice(["books", "outdoors", "electronics"]), "page_type": "product"}),
        ("click", lambda: {"target": rng.choice(["hero", "cta", "nav"]), "x": rng.randint(0, 1200), "y": rng.randint(0, 900)}),
        ("scroll_depth", lambda: {"depth": rng.choice([25, 50, 75, 100])}),
        ("dwell", lambda: {"seconds": round(rng.uniform(1, 90), 2), "category": "books"}),
        ("add_to_cart", lambda: {"product_id": rng.randint(1, 500)}),
        ("search", lambda: {"query": rng.choice(["tent", "headphones", "novel"])}),
    ]
    batch = []
    for _ in range(BATCH):
        kind, fields = rng.choices(kinds, weights=[10, 4, 3, 2, 1, 1])[0]
        batch.append({"type": kind, "id": uuid.UUID(int=rng.getrandbits(128)).hex, "ts": now_ms - rng.randint(0, 60_000), **fields()})
    return batch


def stored_counts(client) -> tuple[int, int]:
    """Events held: the sum of every profile's per-type totals, and the events in the stream."""
    from tailored.events.stream import STREAM_KEY

    totals = 0
    for key in client.scan_iter(match="tl:v1:{*}:t", count=1000):
        totals += sum(int(v) for name, v in client.hgetall(key).items() if name.startswith("e:"))
    in_stream = sum(len(json.loads(fields["e"])) for _, fields in client.xrange(STREAM_KEY))
    return totals, in_stream


def bench_service(rng: random.Random) -> dict:
    from django.test import RequestFactory

    from tailored import conf, services
    from tailored.events.schema import read_batch, validate_events

    factory = RequestFactory(HTTP_USER_AGENT=DESKTOP_CHROME_UA)
    visitors = []
    for i in range(VISITORS):
        request = factory.get("/")
        request.COOKIES.update({"tl_consent": CONSENT_COOKIE_VALUE, "tl_vid": signed_visitor_id(f"{i:032x}")})
        visitors.append(services.resolve_visitor(request))
    now = time.time()
    raw = [make_batch(rng, int(now * 1000)) for _ in range(SERVICE_BATCHES)]
    bodies = [json.dumps({"events": batch}).encode() for batch in raw]
    limits = conf.get("MAX_BATCH_EVENTS"), conf.get("MAX_BATCH_BYTES")
    t0 = time.perf_counter()
    validated = [validate_events(read_batch(body, *limits), now)[0] for body in bodies]
    validate_s = time.perf_counter() - t0
    assert all(len(b) == BATCH for b in validated)

    client = conf.get_profile_store().client
    client.flushall()
    progress(f"service: {SERVICE_BATCHES} batches of {BATCH} events over {VISITORS} visitors")
    stored = limited = 0
    record_s, clock = 0.0, time.perf_counter
    t0 = clock()
    for i, body in enumerate(bodies):  # what the endpoint does with a body, less the HTTP
        valid, _ = validate_events(read_batch(body, *limits), now)
        started = clock()
        result = services.record_events(visitors[i % VISITORS], valid, now)
        record_s += clock() - started
        stored += len(result.stored)
        limited += result.rate_limited
    service_s = clock() - t0
    assert not limited, f"{limited} batches were rate limited"
    held, in_stream = stored_counts(client)
    sent = SERVICE_BATCHES * BATCH
    progress(f"service: stored {stored}, profiles hold {held}, stream holds {in_stream}")

    # Baseline: one XADD per batch in a pipeline, the least a durable append can cost.
    client.flushall()
    t0 = time.perf_counter()
    for body in bodies:
        pipe = client.pipeline(transaction=False)
        pipe.xadd("bench:baseline", {"e": body})
        pipe.execute()
    xadd_s = time.perf_counter() - t0
    client.flushall()
    return {
        "sent": sent, "stored": min(stored, held, in_stream),
        "per_s": sent / service_s, "record_per_s": sent / record_s, "validate_per_s": sent / validate_s, "xadd_per_s": sent / xadd_s,
    }


def start_gunicorn(workdir: Path, redis_url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cms.settings.test",
        "SQLITE_PATH": os.environ["SQLITE_PATH"],
        "REDIS_URL": redis_url,
        "PYTHONPATH": str(REPO_ROOT),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "cms.wsgi:application"],
        cwd=REPO_ROOT, env=env,
    )
    on_exit(lambda: (process.terminate(), process.wait(timeout=10)))
    import httpx

    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/me/data", timeout=1.0)
            return process, port
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def bench_http(port: int, rng: random.Random) -> dict:
    import httpx

    now_ms = int(time.time() * 1000)
    bodies = [json.dumps({"events": make_batch(rng, now_ms)}) for _ in range(4000)]
    sent = [0] * HTTP_THREADS
    failures = [0] * HTTP_THREADS
    deadline = time.perf_counter() + HTTP_SECONDS
    counter = iter(range(len(bodies)))
    lock = threading.Lock()
    # Visitors other than the service bench's, as the site signed their ids.
    cookies_of = [signed_visitor_id(f"{n + VISITORS:032x}") for n in range(VISITORS)]

    def client_thread(index: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"User-Agent": DESKTOP_CHROME_UA, "Content-Type": "application/json"}) as client:
            while time.perf_counter() < deadline:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                visitor = cookies_of[n % VISITORS]
                response = client.post("/api/events", content=bodies[n], cookies={"tl_consent": CONSENT_COOKIE_VALUE, "tl_vid": visitor})
                if response.status_code == 202:
                    sent[index] += BATCH
                else:
                    failures[index] += 1

    threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(HTTP_THREADS)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    return {"sent": sum(sent), "failures": sum(failures), "per_s": sum(sent) / elapsed}


def main() -> None:
    server, workdir = setup_django("tl-bench-ingest-")
    # The per-visitor rate limit stays at its default: checking it is part of the cost.
    rng = random.Random(SEED)
    service = bench_service(rng)
    progress(f"service: {service['per_s']:,.0f} events/s, record_events alone {service['record_per_s']:,.0f}/s")

    from tailored import conf

    progress("http: starting gunicorn with 2 workers")
    _, port = start_gunicorn(workdir, server.url)
    http = bench_http(port, rng)
    held, in_stream = stored_counts(conf.get_profile_store().client)
    progress(f"http: sent {http['sent']} in accepted batches ({http['failures']} refused), profiles hold {held}, stream {in_stream}")

    print()
    print(f"service: {service['per_s']:,.0f} events/s through read_batch, validation and record_events; "
          f"record_events alone {service['record_per_s']:,.0f}/s; validation alone {service['validate_per_s']:,.0f}/s; "
          f"bare XADD pipeline {service['xadd_per_s']:,.0f}/s")
    print(f"http: {http['per_s']:,.0f} events/s through gunicorn (2 workers, {HTTP_THREADS} client threads on the same 2 cores)")
    print_headline({
        "ingest_http_events_per_s": round(http["per_s"]),
        "ingest_http_sent": http["sent"],
        "ingest_http_stored": min(held, in_stream),
        "ingest_validate_events_per_s": round(service["validate_per_s"]),
        "ingest_xadd_events_per_s": round(service["xadd_per_s"]),
        "ingest_service_over_xadd_ratio": service["per_s"] / service["xadd_per_s"],
        "ingest_record_events_per_s": round(service["record_per_s"]),
        "ingest_over_xadd_ratio": service["record_per_s"] / service["xadd_per_s"],
        "ingest_events_per_s": round(service["per_s"]),
        "ingest_sent": service["sent"],
        "ingest_stored": service["stored"],
    })
    if service["sent"] != service["stored"] or http["sent"] != min(held, in_stream):
        raise SystemExit("sent and stored differ")


if __name__ == "__main__":
    main()
