"""How long does GraphQL take to refuse a hostile document, next to a normal homepage query?

The hostile document is the one a tester used as a CPU weapon (issue 14 item 6): 48 KB of 4,000
repeated `visitor {id}`, which validation once took 4-9 s to give up on. Each request sends a
different copy (its operation is named after a counter), so no cache answers it: every one is
parsed until the token limit (GRAPHQL_MAX_TOKENS) stops it. Alternated in rounds with:

- homepage: POST /graphql/ {"id": "homepage"}, the persisted homepage operation, anonymous.

Every response is checked: the hostile one is a 400 with the code TOO_MANY_TOKENS, the homepage
has data and no errors.

Run from the repository root: .venv/bin/python bench/graphql_hostile.py
"""

from __future__ import annotations

import io
import itertools
import json
import sys
from pathlib import Path

# bench/graphql.py must not shadow graphql-core: this directory leaves the path first.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from bench._common import (  # noqa: E402
    DESKTOP_CHROME_UA,
    Summary,
    interleaved_rounds,
    print_headline,
    progress,
    quiet_gc,
    run_timed,
    setup_django,
)

WARMUP = 10  # per mode, before the rounds
ROUNDS = 10
PER_ROUND = 20  # ROUNDS x PER_ROUND = 200 timed requests per mode
REPORT_EVERY = 5
REPEATS = 4000


def hostile_document(n: int) -> str:
    return f"query Q{n} {{" + "visitor {id}" * REPEATS + "}"


def main() -> None:
    setup_django("tl-bench-graphql-hostile-")

    from django.core.management import call_command
    from django.test import Client

    from tailored import conf

    progress("loading the demo shop")
    call_command("load_demo", stdout=io.StringIO())
    client = Client(HTTP_USER_AGENT=DESKTOP_CHROME_UA)
    counter = itertools.count()
    size = len(hostile_document(0))
    assert size < conf.get("GRAPHQL_MAX_DOCUMENT_CHARS"), size
    progress(f"hostile document: {size} characters, {REPEATS} x `visitor {{id}}`")

    def post(body: dict):
        return client.post("/graphql/", json.dumps(body), content_type="application/json")

    def check_hostile(response) -> None:
        codes = [e.get("extensions", {}).get("code") for e in response.json().get("errors", [])]
        if response.status_code != 400 or codes != ["TOO_MANY_TOKENS"]:
            raise AssertionError(f"hostile: status {response.status_code}, codes {codes}")

    def check_homepage(response) -> None:
        body = response.json()
        if response.status_code != 200 or body.get("errors") or not body["data"]["page"]["body"]:
            raise AssertionError(f"homepage: status {response.status_code}: {body.get('errors')}")

    modes = {
        "hostile": (lambda _: post({"query": hostile_document(next(counter))}), check_hostile),
        "homepage": (lambda _: post({"id": "homepage"}), check_homepage),
    }

    def run_mode(mode: str, iterations: int) -> list[float]:
        fn, check = modes[mode]
        quiet_gc()
        return run_timed(fn, iterations, check=check)

    progress(f"warm-up: {WARMUP} requests per mode")
    for mode in modes:
        run_mode(mode, WARMUP)

    samples = interleaved_rounds(list(modes), run_mode, ROUNDS, PER_ROUND, REPORT_EVERY, ratio=("hostile", "homepage"))
    hostile = Summary.of("hostile refusal (48 KB)", samples["hostile"])
    homepage = Summary.of("homepage query", samples["homepage"])
    print()
    print(f"Results ({ROUNDS} rounds x {PER_ROUND} requests per mode, interleaved, after {WARMUP} warm-up requests):")
    print(hostile.line())
    print(homepage.line())
    print_headline(
        {
            "hostile_refusal_ms_median": hostile.median_ms,
            "hostile_refusal_ms_p99": hostile.p99_ms,
            "homepage_query_ms_median": homepage.median_ms,
            "homepage_query_ms_p99": homepage.p99_ms,
            "hostile_over_homepage_ratio": hostile.median_ms / homepage.median_ms,
        }
    )


if __name__ == "__main__":
    main()
