"""How does the headless path compare with the server-rendered page, for the same visitor?

Loads the demo shop, makes a consenting visitor an electronics fan (3 electronics page views
recorded through the real RedisProfileStore), then, with django.test.Client and that visitor's
cookies, alternates in rounds (in alternating order, to cancel drift) between:

- graphql+products: POST /graphql/ {"id": "homepage"}, the persisted personalized homepage
  operation, then the persisted `homepage_products` operation (the product rows), as a headless
  frontend that shows what the SSR page shows needs both (timed together): the headline,
  `graphql_over_ssr_ratio`, compares this with SSR, the same content (budget 1.3);
- graphql: the homepage operation alone (sections and chosen variants, no product lists): less
  content than the SSR page, so its ratio is a second line, never the headline;
- ssr: GET /, the rendered homepage (products included).

Every response is checked: the electronics variant (GraphQL) or heading (SSR), no errors.

Run from the repository root: .venv/bin/python bench/graphql.py
"""

from __future__ import annotations

import io
import json
import sys
import uuid
from pathlib import Path

# This file is named graphql.py: its own directory must not stay on the path, or it would shadow
# graphql-core for every module that imports `graphql`.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from bench._common import (  # noqa: E402
    CONSENT_COOKIE_VALUE,
    DESKTOP_CHROME_UA,
    Summary,
    interleaved_rounds,
    make_electronics_fan,
    print_headline,
    progress,
    quiet_gc,
    run_timed,
    setup_django,
    signed_visitor_id,
)

WARMUP = 30  # per mode, before the rounds
ROUNDS = 20
PER_ROUND = 20  # ROUNDS x PER_ROUND = 400 timed requests per mode
REPORT_EVERY = 5
ELECTRONICS_VARIANT = "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01"
ELECTRONICS_HEADING = "The latest in electronics"
FALLBACK_HEADING = "Good things for every day"


def main() -> None:
    setup_django("tl-bench-graphql-")

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    # Both paths render: the decision-keyed page cache (bench/cache.py) would serve SSR from Redis.
    override_settings(PERSONALIZATION={**settings.PERSONALIZATION, "PAGE_CACHE_SECONDS": 0}).enable()

    progress("loading the demo shop")
    call_command("load_demo", stdout=io.StringIO())

    visitor_id = uuid.uuid4().hex
    stored = make_electronics_fan(visitor_id)
    assert stored == 3, stored
    progress(f"recorded {stored} electronics page_view events for visitor {visitor_id}")

    client = Client(HTTP_USER_AGENT=DESKTOP_CHROME_UA)
    client.cookies["tl_consent"] = CONSENT_COOKIE_VALUE
    client.cookies["tl_vid"] = signed_visitor_id(visitor_id)

    def post(operation_id: str):
        return client.post("/graphql/", json.dumps({"id": operation_id}), content_type="application/json")

    def check_graphql(response) -> None:
        if response.status_code != 200:
            raise AssertionError(f"graphql: status {response.status_code}: {response.content[:300]!r}")
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"graphql: {body['errors']}")
        first = body["data"]["page"]["body"][0]
        if first.get("variant") != ELECTRONICS_VARIANT:
            raise AssertionError(f"graphql: variant {first.get('variant')!r}, not the electronics one")

    def check_both(responses) -> None:
        home, products = responses
        check_graphql(home)
        body = products.json()
        if products.status_code != 200 or body.get("errors"):
            raise AssertionError(f"graphql products: {products.status_code} {body.get('errors')}")

    def check_ssr(response) -> None:
        if response.status_code != 200:
            raise AssertionError(f"ssr: status {response.status_code}")
        html = response.content.decode()
        if ELECTRONICS_HEADING not in html or FALLBACK_HEADING in html:
            raise AssertionError("ssr: the electronics heading is not the one shown")

    modes = {
        "graphql": (lambda _: post("homepage"), check_graphql),
        "graphql+products": (lambda _: (post("homepage"), post("homepage_products")), check_both),
        "ssr": (lambda _: client.get("/"), check_ssr),
    }

    def run_mode(mode: str, iterations: int) -> list[float]:
        fn, check = modes[mode]
        quiet_gc()
        return run_timed(fn, iterations, check=check)

    progress(f"warm-up: {WARMUP} requests per mode")
    for mode in modes:
        run_mode(mode, WARMUP)

    queries = {}
    for mode, (fn, check) in modes.items():
        with CaptureQueriesContext(connection) as captured:
            check(fn(None))
        queries[mode] = len(captured.captured_queries)
    progress(f"database queries per request: {queries}")

    samples = interleaved_rounds(
        list(modes), run_mode, ROUNDS, PER_ROUND, REPORT_EVERY, ratio=("graphql+products", "ssr")
    )

    gql = Summary.of("graphql homepage", samples["graphql"])
    both = Summary.of("graphql homepage+products", samples["graphql+products"])
    ssr = Summary.of("ssr homepage", samples["ssr"])
    print()
    print(
        f"Results ({ROUNDS} rounds x {PER_ROUND} requests per mode, interleaved, "
        f"after {WARMUP} warm-up requests per mode), same electronics-fan visitor:"
    )
    print(gql.line())
    print(both.line())
    print(ssr.line())

    print_headline(
        {
            "graphql_queries": queries["graphql+products"],
            "graphql_sections_only_queries": queries["graphql"],
            "ssr_queries": queries["ssr"],
            "graphql_p99_ms": both.p99_ms,
            "ssr_p99_ms": ssr.p99_ms,
            "graphql_sections_only_median_ms": gql.median_ms,
            # Less content than the page (no product rows): for comparison only.
            "graphql_sections_only_over_ssr_ratio": gql.median_ms / ssr.median_ms,
            "graphql_median_ms": both.median_ms,
            "ssr_median_ms": ssr.median_ms,
            # The headline: the same content both ways (sections, chosen variants, product rows).
            "graphql_over_ssr_ratio": both.median_ms / ssr.median_ms,
        }
    )


if __name__ == "__main__":
    main()
