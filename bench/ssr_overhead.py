"""What does personalization add to a server-rendered page?

Loads the demo shop, makes a consenting visitor an electronics fan (3 electronics page views
recorded through the real RedisProfileStore), then builds a real plain page with the same
visible content: a second HomePage, the root of its own Site (so it is routed exactly as the
homepage is), with the same categories under it, whose body holds, in place of each
PersonalizedBlock or ExperimentBlock, the content the fan is shown there (and no personalized
block at all). With django.test.Client and the fan's cookies, the modes alternate in rounds (in
alternating order, to cancel drift):

- personalized: the demo homepage (the electronics variants are chosen);
- cold: the same, with the variant fragment cache emptied before every request;
- plain: the plain page, same content, same visitor, personalization on: the headline
  `ssr_overhead_ratio` is personalized over plain (budget 1.15);
- disabled: the homepage with PERSONALIZATION["ENABLED"] False (every PersonalizedBlock renders
  its fallback, no visitor is resolved): `ssr_disabled_overhead_ratio`, a second line.

Every response is checked to show the heading its mode must show, and the plain page's visible
text is checked once to be the personalized page's.

Run from the repository root: .venv/bin/python bench/ssr_overhead.py
"""

from __future__ import annotations

import io
import re
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
PLAIN_HOST = "127.0.0.1"  # in the test settings' ALLOWED_HOSTS; the demo site answers the rest


def chosen_body(home, visitor) -> list[dict]:
    """The homepage's body as stored data, each personalized or experiment block replaced by the
    content `visitor` is shown there."""
    from tailored.blocks.experiments import ExperimentBlock
    from tailored.blocks.personalized import PersonalizedBlock

    body = []
    for child, raw in zip(home.body, home.body.raw_data, strict=True):
        if isinstance(child.block, (PersonalizedBlock, ExperimentBlock)):
            content = child.block.choose(child.value, visitor).content
            body.extend(dict(item) for item in content.raw_data)
        else:
            body.append(dict(raw))
    return body


def make_plain_home(home, visitor):
    """A real page with the fan's content and no personalized block, routed like the homepage."""
    from wagtail.models import Page, Site

    from cms.models import CategoryPage, HomePage

    plain = HomePage(title=home.title, slug="plain-home", body=chosen_body(home, visitor))
    Page.get_first_root_node().add_child(instance=plain)
    plain.save_revision().publish()
    for category in CategoryPage.objects.child_of(home).live().order_by("title"):
        copy = CategoryPage(title=category.title, slug=category.slug, intro=category.intro)
        plain.add_child(instance=copy)
        copy.save_revision().publish()
    Site.objects.create(hostname=PLAIN_HOST, port=80, root_page=plain, site_name="Plain")
    return plain


def visible_text(html: str) -> str:
    html = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def fan_visitor(client):
    from django.test import RequestFactory

    from tailored import services

    factory = RequestFactory(HTTP_USER_AGENT=DESKTOP_CHROME_UA)
    factory.cookies.update(client.cookies)
    return services.resolve_visitor(factory.get("/"))


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
    from cms.models import HomePage

    home = HomePage.objects.get(slug="home")
    sections = sum(1 for block in home.body if block.block_type == "personalized")
    progress(f"the demo homepage has {sections} personalized sections")

    client = Client(HTTP_USER_AGENT=DESKTOP_CHROME_UA)
    client.cookies["tl_consent"] = CONSENT_COOKIE_VALUE
    client.cookies["tl_vid"] = signed_visitor_id(visitor_id)
    plain_client = Client(HTTP_USER_AGENT=DESKTOP_CHROME_UA, HTTP_HOST=PLAIN_HOST)
    plain_client.cookies = client.cookies
    plain = make_plain_home(home, fan_visitor(client))
    progress(f"plain page {plain.pk}: {len(plain.body)} blocks, none personalized, at http://{PLAIN_HOST}/")

    # What rendering costs: the decision-keyed page cache (its own bench, bench/cache.py) is off.
    base = {**settings.PERSONALIZATION, "PAGE_CACHE_SECONDS": 0}
    on, off = {**base, "ENABLED": True}, {**base, "ENABLED": False}
    # mode: (settings, client, the heading it must show, one it must not)
    modes = {
        "personalized": (on, client, ELECTRONICS_HEADING, FALLBACK_HEADING),
        "cold": (on, client, ELECTRONICS_HEADING, FALLBACK_HEADING),
        "plain": (on, plain_client, ELECTRONICS_HEADING, FALLBACK_HEADING),
        "disabled": (off, client, FALLBACK_HEADING, ELECTRONICS_HEADING),
    }
    from tailored import fragments

    home_id = home.pk

    def empty_fragment_cache():
        fragments.invalidate_page(home_id)

    def checker(mode: str):
        _, _, expected, unexpected = modes[mode]

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

    def run_mode(mode: str, iterations: int) -> list[float]:
        personalization, mode_client, _, _ = modes[mode]
        with override_settings(PERSONALIZATION=personalization):
            assert conf.get("ENABLED") is personalization["ENABLED"]
            prepare = empty_fragment_cache if mode == "cold" else None
            run_timed(lambda _: mode_client.get("/"), SETTLE, prepare, check=checks[mode])
            quiet_gc()
            return run_timed(lambda _: mode_client.get("/"), iterations, prepare, check=checks[mode])

    shown = visible_text(client.get("/").content.decode())
    same = visible_text(plain_client.get("/").content.decode())
    if shown != same:
        raise AssertionError(f"the plain page's text differs:\n{shown}\n---\n{same}")

    progress(f"warm-up: {WARMUP} requests per mode")
    for mode in modes:
        run_mode(mode, WARMUP)

    queries = {}
    for mode in modes:
        personalization, mode_client, _, _ = modes[mode]
        with override_settings(PERSONALIZATION=personalization):
            from tailored.segments import segment_cache

            segment_cache.current()  # so the capture below is not one of the periodic refreshes
            with CaptureQueriesContext(connection) as captured:
                checks[mode](mode_client.get("/"))
            queries[mode] = len(captured.captured_queries)
    progress(f"database queries per request: {queries}")

    samples = interleaved_rounds(list(modes), run_mode, ROUNDS, PER_ROUND, REPORT_EVERY, ratio=("personalized", "plain"))

    on = Summary.of("homepage personalized", samples["personalized"])
    cold = Summary.of("homepage personalized, cold fragment cache", samples["cold"])
    plain_page = Summary.of("plain page, same content", samples["plain"])
    disabled = Summary.of("homepage, personalization off", samples["disabled"])
    print()
    print(
        f"Results ({ROUNDS} rounds x {PER_ROUND} requests per mode, interleaved, "
        f"after {WARMUP} warm-up requests per mode):"
    )
    for summary in (on, cold, plain_page, disabled):
        print(summary.line())
    print()
    print(
        f"Personalization adds {on.median_ms - plain_page.median_ms:.3f} ms at the median "
        f"({on.median_ms / plain_page.median_ms:.3f}x) and {on.p99_ms - plain_page.p99_ms:.3f} ms at p99 "
        f"({on.p99_ms / plain_page.p99_ms:.3f}x) to a page of the same content."
    )

    print_headline(
        {
            "ssr_personalized_sections": sections,
            "ssr_cold_median_ms": cold.median_ms,
            "ssr_cold_overhead_ratio": cold.median_ms / plain_page.median_ms,
            "ssr_personalized_queries": queries["personalized"],
            "ssr_plain_queries": queries["plain"],
            "ssr_disabled_queries": queries["disabled"],
            "ssr_personalized_p99_ms": on.p99_ms,
            "ssr_plain_p99_ms": plain_page.p99_ms,
            "ssr_disabled_median_ms": disabled.median_ms,
            # Against the same homepage with personalization off (it shows the fallbacks).
            "ssr_disabled_overhead_ratio": on.median_ms / disabled.median_ms,
            "ssr_overhead_ms": on.median_ms - plain_page.median_ms,
            "ssr_personalized_median_ms": on.median_ms,
            "ssr_plain_median_ms": plain_page.median_ms,
            # The headline: against a real page of the same visible content (budget 1.15).
            "ssr_overhead_ratio": on.median_ms / plain_page.median_ms,
        }
    )


if __name__ == "__main__":
    main()
