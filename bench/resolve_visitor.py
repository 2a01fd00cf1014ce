"""How long does resolving a visitor take, warm, against a real Redis profile store?

50 enabled segments with varied rules, a visitor with a non-trivial profile (recorded through
services.record_events into RedisProfileStore), and a fresh RequestFactory request per call to
services.resolve_visitor. Baselines measured in the same process, interleaved in rounds with the
paths under test: a bare Redis PING and a raw pipeline of the same commands the store's get
sends (on an unknown visitor, and on this visitor). Breakdown paths (the store's read alone, as
a request reads, rule evaluation alone) show where the time goes.

The visitor's profile does not change between reads, so every timed read finds the window sums
its previous read kept (READ_LUA; a site's visitor between two page views has usually added a
batch of events, whose few new pairs the next read adds to the kept sums).

User agents: `resolve_visitor` sends a mix, as a site sees it: most requests come from a few
common browsers, and every 10th from a User-Agent this process has never seen (a new browser
build), which ua-parser must parse. `resolve_visitor_fresh_ua` sends only never-seen ones. The
first parse in a process builds ua-parser's resolver; `ua_first_parse_cold_ms` times it in a
fresh process, and `ua_first_parse_ms` the first parse in a fresh process once Django has started
(the app warms the parser at start-up, off the request path).

Run from the repository root: .venv/bin/python bench/resolve_visitor.py
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (  # noqa: E402
    CONSENT_COOKIE_VALUE,
    DESKTOP_CHROME_UA,
    Summary,
    print_headline,
    progress,
    quiet_gc,
    redis_parser,
    run_timed,
    setup_django,
    signed_visitor_id,
)

SEGMENTS = 50
EVENTS = 240
WARMUP = 500
ROUNDS = 10
PER_ROUND = 500  # ROUNDS x PER_ROUND = 5000 timed calls per path
CATEGORIES = ("electronics", "home-kitchen", "outdoors", "books", "fashion", "beauty")
SEED = 20240601
FRESH_EVERY = 10  # one request in 10 brings a User-Agent the process has not parsed yet
COMMON_UAS = (
    DESKTOP_CHROME_UA,
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
)
_builds = itertools.count(1)


def fresh_ua() -> str:
    """A desktop Chrome of a build number never used before in this process."""
    n = next(_builds)
    return f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.{n // 100}.{n % 100} Safari/537.36"


FIRST_PARSE = """
import os, sys, time
if sys.argv[1] == "app":
    import django
    django.setup()
    time.sleep(1.0)  # a server starts, then its first request arrives
from tailored.context.device import device_facts
start = time.perf_counter()
device_facts(sys.argv[2])
print((time.perf_counter() - start) * 1000)
"""


def first_parse_ms(mode: str) -> float:
    """The first User-Agent parse of a fresh process: "cold" (nothing warmed it) or "app"
    (after Django's start-up, as in a web worker's first request)."""
    from bench._common import REPO_ROOT

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", FIRST_PARSE, mode, fresh_ua()], env=env, cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def count(category: str, hours: int, op: str, value: int) -> dict:
    return {
        "count": {"event": "page_view", "category": category, "within_hours": hours},
        "op": op,
        "value": value,
    }


def field(name: str, op: str, value) -> dict:
    return {"field": name, "op": op, "value": value}


def build_rules(rng: random.Random, n: int) -> list[dict]:
    """A deterministic mix: plain count rules, context field rules, and nested combinations."""
    windows = (1, 6, 12, 24, 48)
    thresholds = (1, 2, 3, 5, 8, 13)
    count_ops = ("gte", "gte", "gte", "gt", "lt", "lte", "eq")

    def any_count() -> dict:
        return count(
            rng.choice(CATEGORIES),
            rng.choice(windows),
            rng.choice(count_ops),
            rng.choice(thresholds),
        )

    field_rules = [
        field("context.device", "eq", "mobile"),
        field("context.device", "in", ["tablet", "mobile"]),
        field("context.device", "ne", "bot"),
        field("context.device", "eq", "desktop"),
        field("context.daypart", "eq", "morning"),
        field("context.daypart", "in", ["evening", "night"]),
        field("context.daypart", "not_in", ["night"]),
        field("context.daypart", "eq", "afternoon"),
    ]

    def any_field() -> dict:
        return rng.choice(field_rules)

    combos = [
        lambda: {"all": [any_count(), any_field()]},
        lambda: {"any": [any_count(), any_count()]},
        lambda: {"not": any_count()},
        lambda: {"all": [{"any": [any_count(), any_count(), any_count()]}, {"not": any_field()}]},
        lambda: {"any": [{"all": [any_count(), any_field()]}, {"not": any_count()}]},
        lambda: {
            "all": [field("profile.page_views", "gte", rng.choice((10, 50, 200))), any_count()]
        },
        lambda: {"not": {"any": [any_field(), {"all": [any_count(), any_count()]}]}},
    ]

    rules: list[dict] = []
    # The six demo-style "fans" rules first (>= 3 views in 24 hours), then the varied rest.
    rules.extend(count(category, 24, "gte", 3) for category in CATEGORIES)
    while len(rules) < 20:
        rules.append(any_count())
    rules.extend(field_rules)
    while len(rules) < n:
        rules.append(combos[len(rules) % len(combos)]())
    return rules[:n]


def create_segments(rng: random.Random) -> None:
    from tailored.models import Segment

    Segment.objects.all().delete()
    for i, rule in enumerate(build_rules(rng, SEGMENTS)):
        # save() compiles the rule: an invalid one would raise here, not be silently skipped.
        Segment(
            name=f"Bench segment {i:02d}",
            slug=f"bench-{i:02d}",
            enabled=True,
            priority=rng.randint(0, 20),
            rule=rule,
        ).save()


def make_request_factory(visitor_id: str):
    from django.test import RequestFactory

    factory = RequestFactory(
        HTTP_USER_AGENT=DESKTOP_CHROME_UA, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9"
    )
    factory.cookies["tl_consent"] = CONSENT_COOKIE_VALUE
    factory.cookies["tl_vid"] = signed_visitor_id(visitor_id)
    return factory


def record_profile(rng: random.Random, factory) -> int:
    """EVENTS page views over the last 46 hours (inside the 48 kept hourly buckets, so reads
    never have stale buckets to prune), skewed towards electronics and outdoors."""
    from tailored import services
    from tailored.core.types import Event

    visitor = services.resolve_visitor(factory.get("/"))
    assert visitor.id is not None and visitor.consent.allows_profile, visitor
    now = time.time()
    weights = (6, 2, 4, 1, 2, 1)
    events = [
        Event(
            id=uuid.uuid4().hex,
            type="page_view",
            ts=now - rng.uniform(0, 46 * 3600),
            category=category,
            item=f"product-{rng.randint(1, 120)}",
            url=f"/{category}/",
        )
        for category in rng.choices(CATEGORIES, weights=weights, k=EVENTS)
    ]
    stored = 0
    for start in range(0, len(events), 60):  # batches, as the events endpoint would deliver them
        stored += len(services.record_events(visitor, events[start : start + 60]).stored)
    return stored


def main() -> None:
    setup_django("tl-bench-resolve-")

    from tailored import conf, services
    from tailored.context.device import device_facts
    from tailored.core.segments import matching_segments
    from tailored.profiles.redis import _windows_plan, visitor_keys
    from tailored.segments import segment_cache

    rng = random.Random(SEED)
    progress(f"creating {SEGMENTS} segments")
    create_segments(rng)

    visitor_id = uuid.UUID(int=rng.getrandbits(128)).hex
    factory = make_request_factory(visitor_id)
    stored = record_profile(rng, factory)
    progress(
        f"recorded {stored} page_view events for visitor {visitor_id} through RedisProfileStore"
    )

    store = conf.get_profile_store()
    client = store.client
    keys = visitor_keys(visitor_id)
    empty_keys = visitor_keys(uuid.UUID(int=rng.getrandbits(128)).hex)
    assert client.exists(*empty_keys.values()) == 0

    visitor = services.resolve_visitor(factory.get("/"))
    segment_set, windows = segment_cache.current()
    assert len(segment_set.definitions) == SEGMENTS, len(segment_set.definitions)
    assert visitor.context.device == "desktop", visitor.context
    assert visitor.profile.page_views == EVENTS, visitor.profile
    assert len(visitor.profile.category_views) == len(CATEGORIES), visitor.profile.category_views
    progress(
        f"profile: {visitor.profile.page_views} page views, "
        f"{len(windows)} windowed counts read server-side over "
        f"{len(visitor.profile.category_views)} categories, {len(visitor.profile.recent_items)} recent items; "
        f"matches {len(visitor.segments)}/{SEGMENTS} segments "
        f"(device={visitor.context.device}, daypart={visitor.context.daypart})"
    )
    profile, context = visitor.profile, visitor.context

    def redis_ping(_):
        return client.ping()

    def pipeline4(target: dict[str, str]):
        # The same commands as RedisProfileStore.get, in one pipelined round trip, unparsed.
        pipe = client.pipeline(transaction=False)
        store._queue_read(pipe, target, _windows_plan(windows)[0], time.time())
        return pipe.execute()

    def redis_roundtrip(_):
        return pipeline4(empty_keys)  # an unknown visitor: the round trip without the payload

    def redis_roundtrip_full(_):
        return pipeline4(keys)  # this visitor: the same reply store.get has to parse

    def store_get(_):
        return store.get_for_request(visitor_id, time.time(), windows)  # as resolve_visitor reads

    def rules_only(_):
        return matching_segments(segment_set.definitions, profile, context, time.time())

    def resolve(request):
        return services.resolve_visitor(request)

    calls = itertools.count()

    def mixed_request():
        n = next(calls)
        ua = fresh_ua() if n % FRESH_EVERY == FRESH_EVERY - 1 else COMMON_UAS[n % len(COMMON_UAS)]
        return factory.get("/", HTTP_USER_AGENT=ua)

    def fresh_ua_request():
        return factory.get("/", HTTP_USER_AGENT=fresh_ua())

    expected_segments = visitor.segments

    def check_visitor(result) -> None:
        # Not the segment set: hour windows may legitimately shift if the clock crosses an hour.
        if result.id != visitor_id or result.profile.page_views != EVENTS or not result.segments:
            raise AssertionError(f"unexpected visitor: {result}")

    paths = {
        "redis_ping": (redis_ping, None, None),
        "redis_roundtrip": (redis_roundtrip, None, None),
        "redis_roundtrip_full": (redis_roundtrip_full, None, None),
        "store_get": (store_get, None, None),
        "matching_segments": (rules_only, None, None),
        "resolve_visitor": (resolve, mixed_request, check_visitor),
        "resolve_visitor_fresh_ua": (resolve, fresh_ua_request, check_visitor),
    }

    progress(f"warm-up: {WARMUP} calls per path")
    for fn, prepare, check in paths.values():
        run_timed(fn, WARMUP, prepare, check)
    misses_before = device_facts.cache_info().misses

    samples: dict[str, list[float]] = {name: [] for name in paths}
    for round_no in range(ROUNDS):
        order = list(paths) if round_no % 2 == 0 else list(reversed(paths))
        for name in order:
            fn, prepare, check = paths[name]
            quiet_gc()
            samples[name].extend(run_timed(fn, PER_ROUND, prepare, check))
        progress(
            f"round {round_no + 1}/{ROUNDS}: resolve_visitor median so far "
            f"{Summary.of('x', samples['resolve_visitor']).median_ms:.3f} ms"
        )

    cache = device_facts.cache_info()
    fresh = ROUNDS * PER_ROUND * (1 + 1 / FRESH_EVERY)  # the fresh-UA path, and the mix's share
    assert cache.misses - misses_before >= fresh * 0.99, cache  # each fresh UA was parsed
    progress("first User-Agent parse in fresh processes")
    cold_parse = [first_parse_ms("cold") for _ in range(3)]
    app_parse = [first_parse_ms("app") for _ in range(3)]

    summaries = {name: Summary.of(name, values) for name, values in samples.items()}
    print()
    print(
        f"Results ({ROUNDS} rounds x {PER_ROUND} calls per path, after {WARMUP} warm-up calls each):"
    )
    for summary in summaries.values():
        print(summary.line())

    resolve_s = summaries["resolve_visitor"]
    trip_s = summaries["redis_roundtrip"]
    full_s = summaries["redis_roundtrip_full"]
    ping_s = summaries["redis_ping"]
    get_s = summaries["store_get"]
    rules_s = summaries["matching_segments"]
    print()
    print("Ratios (median resolve_visitor / median baseline):")
    print(
        f"  vs redis_roundtrip      (store.get pipeline, empty keys):  {resolve_s.median_ms / trip_s.median_ms:6.2f}x"
    )
    print(
        f"  vs redis_roundtrip_full (same keys and reply as store.get): {resolve_s.median_ms / full_s.median_ms:6.2f}x"
    )
    print(
        f"  vs redis_ping:                                              {resolve_s.median_ms / ping_s.median_ms:6.2f}x"
    )
    print("Where the median goes (differences of medians, approximate):")
    parts = [
        ("round trip (store.get commands, no payload)", trip_s.median_ms),
        ("reading the reply payload (redis-py)", full_s.median_ms - trip_s.median_ms),
        ("building the Profile (rest of store.get)", get_s.median_ms - full_s.median_ms),
        (f"evaluating {SEGMENTS} segment rules", rules_s.median_ms),
        ("consent, context, the rest", resolve_s.median_ms - get_s.median_ms - rules_s.median_ms),
    ]
    for label, value in parts:
        print(f"  {label + ':':<44} {value:7.3f} ms")

    print_headline(
        {
            "redis_parser": redis_parser(),
            "segments": SEGMENTS,
            "segments_matched": len(expected_segments),
            "redis_ping_median_ms": ping_s.median_ms,
            "redis_roundtrip_median_ms": trip_s.median_ms,
            "redis_roundtrip_full_median_ms": full_s.median_ms,
            "store_get_median_ms": get_s.median_ms,
            "matching_segments_median_ms": rules_s.median_ms,
            "ua_first_parse_cold_ms": min(cold_parse),
            "ua_first_parse_ms": max(app_parse),
            "resolve_visitor_fresh_ua_median_ms": summaries["resolve_visitor_fresh_ua"].median_ms,
            "resolve_visitor_fresh_ua_p99_ms": summaries["resolve_visitor_fresh_ua"].p99_ms,
            "resolve_visitor_over_roundtrip_ratio": resolve_s.median_ms / trip_s.median_ms,
            "resolve_visitor_median_ms": resolve_s.median_ms,
            "resolve_visitor_p99_ms": resolve_s.p99_ms,
        }
    )


if __name__ == "__main__":
    main()
