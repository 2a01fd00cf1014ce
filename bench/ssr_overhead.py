"""What does personalization add to a server-rendered page?

Loads the demo shop, makes a consenting visitor an electronics fan (3 electronics page views
recorded through the real RedisProfileStore), then renders the homepage with django.test.Client
with personalization on (the electronics variant is chosen) and off (PERSONALIZATION["ENABLED"]
False: every PersonalizedBlock renders its fallback and no visitor is resolved). The two modes
alternate in rounds, in alternating order, to cancel drift; every response is checked to show
the heading its mode must show.

Run from the repository root: .venv/bin/python bench/ssr_overhead.py
"""

from __future__ import annotations

import io
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
SETTLE = 2  # untimed requests after each switch (override_settings rebuilds the profile store)
ROUNDS = 40
PER_ROUND = 25  # ROUNDS x PER_ROUND = 1000 timed requests per mode; short rounds cancel drift
REPORT_EVERY = 5  # rounds per progress line
ELECTRONICS_HEADING = "The latest in electronics"
FALLBACK_HEADING = "Good things for every day"


def main() -> None:
    setup_django("tl-bench-ssr-")

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from tailored import conf

    progress("loading the demo shop")
    call_command("load_demo", stdout=io.StringIO())

    visitor_id = uuid.uuid4().hex
    stored = make_electronics_fan(visitor_id)
    assert stored == 3, stored
    progress(f"recorded {stored} electronics page_view events for visitor {visitor_id}")
    from cms.models import HomePage as Home

    sections = sum(1 for block in Home.objects.get().body if block.block_type == "personalized")
    progress(f"the demo homepage has {sections} personalized sections")

    client = Client(HTTP_USER_AGENT=DESKTOP_CHROME_UA)
    client.cookies["tl_consent"] = CONSENT_COOKIE_VALUE
    client.cookies["tl_vid"] = signed_visitor_id(visitor_id)

    base = dict(settings.PERSONALIZATION)
    # "cold": personalized with the variant fragment cache emptied before every request.
    modes = {
        "personalized": ({**base, "ENABLED": True}, ELECTRONICS_HEADING, FALLBACK_HEADING),
        "cold": ({**base, "ENABLED": True}, ELECTRONICS_HEADING, FALLBACK_HEADING),
        "plain": ({**base, "ENABLED": False}, FALLBACK_HEADING, ELECTRONICS_HEADING),
    }
    from cms.models import HomePage
    from tailored import fragments

    home_id = HomePage.objects.get().pk

    def empty_fragment_cache():
        fragments.invalidate_page(home_id)

    def checker(mode: str):
        _, expected, unexpected = modes[mode]

        def check(response) -> None:
            if response.status_code != 200:
                raise AssertionError(f"{mode}: status {response.status_code}")
            html = response.content.decode()
            if expected not in html or unexpected in html:
                raise AssertionError(
                    f"{mode}: expected {expected!r} and not {unexpected!r} in the page"
                )

        return check

    checks = {mode: checker(mode) for mode in modes}

    def get_home(_):
        return client.get("/")

    def run_mode(mode: str, iterations: int) -> list[float]:
        personalization, _, _ = modes[mode]
        with override_settings(PERSONALIZATION=personalization):
            assert conf.get("ENABLED") is personalization["ENABLED"]
            prepare = empty_fragment_cache if mode == "cold" else None
            run_timed(get_home, SETTLE, prepare, check=checks[mode])
            quiet_gc()
            return run_timed(get_home, iterations, prepare, check=checks[mode])

    progress(f"warm-up: {WARMUP} requests per mode")
    for mode in modes:
        run_mode(mode, WARMUP)

    queries = {}
    for mode in modes:
        with override_settings(PERSONALIZATION=modes[mode][0]):
            from tailored.segments import segment_cache

            segment_cache.current()  # so the capture below is not one of the periodic refreshes
            with CaptureQueriesContext(connection) as captured:
                checks[mode](client.get("/"))
            queries[mode] = len(captured.captured_queries)
    progress(f"database queries per request: {queries}")

    samples = interleaved_rounds(list(modes), run_mode, ROUNDS, PER_ROUND, REPORT_EVERY, ratio=("personalized", "plain"))

    on = Summary.of("homepage personalized", samples["personalized"])
    cold = Summary.of("homepage personalized, cold fragment cache", samples["cold"])
    off = Summary.of("homepage plain", samples["plain"])
    print()
    print(
        f"Results ({ROUNDS} rounds x {PER_ROUND} requests per mode, interleaved, "
        f"after {WARMUP} warm-up requests per mode):"
    )
    print(on.line())
    print(cold.line())
    print(off.line())
    print()
    print(
        f"Personalization adds {on.median_ms - off.median_ms:.3f} ms at the median "
        f"({on.median_ms / off.median_ms:.3f}x) and {on.p99_ms - off.p99_ms:.3f} ms at p99 "
        f"({on.p99_ms / off.p99_ms:.3f}x) to the homepage."
    )

    print_headline(
        {
            "ssr_personalized_sections": sections,
            "ssr_cold_median_ms": cold.median_ms,
            "ssr_cold_overhead_ratio": cold.median_ms / off.median_ms,
            "ssr_personalized_queries": queries["personalized"],
            "ssr_plain_queries": queries["plain"],
            "ssr_personalized_p99_ms": on.p99_ms,
            "ssr_plain_p99_ms": off.p99_ms,
            "ssr_overhead_ms": on.median_ms - off.median_ms,
            "ssr_personalized_median_ms": on.median_ms,
            "ssr_plain_median_ms": off.median_ms,
            "ssr_overhead_ratio": on.median_ms / off.median_ms,
        }
    )


if __name__ == "__main__":
    main()
