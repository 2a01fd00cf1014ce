"""Caching bench (issue 21 item 8): throughput of personalized pages with and without the page
cache against a real plain page, and nginx's hit ratio for visitors without consent.

Starts a redis-server, two gunicorns (2 workers each) on a throwaway SQLite database with the
demo content and a plain copy of the homepage (the electronics fan's content, no personalized
block, ssr_overhead's `make_plain_home`): one with the decision-keyed page cache, one with it off.
A loopback load (CLIENTS threads, keep-alive) requests one page for ROUND_S seconds at a time,
the modes interleaved round by round so drift hits all alike:

    cached        the personalized homepage for consenting electronics fans, page cache on
    personalized  the same, page cache off
    plain         the plain homepage for the same fans, page cache off

every response checked to show the heading its mode must show. It repeats personalized and
plain with 10 and then 50 more segments enabled, and finally puts nginx with
docs/deploy/nginx.conf in front and drives 480 requests of anonymous desktop, anonymous mobile
and declined visitors over the homepage, a landing, a category and a product page. It prints:

    cached_personalized_over_plain_ratio   cached req/s over plain req/s (target >= 3)
    personalized_over_plain_ratio          personalized over plain without the page cache, the
                                           lowest of K = 0, 10, 50 extra segments (target >= 0.9,
                                           and flat: each K on its own line)
    nginx_hit_ratio                        HIT / all nginx answers for the anonymous mix (>= 0.9)
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

from _common import (
    CONSENT_COOKIE_VALUE,
    DESKTOP_CHROME_UA,
    REPO_ROOT,
    free_port,
    print_headline,
    progress,
    signed_visitor_id,
)


def sibling(name: str):
    """Another bench script as a module (_common takes bench/ off sys.path, see there)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


faults = sibling("faults")
Redis, scratch_dir, setup, spawn = faults.Redis, faults.scratch_dir, faults.setup, faults.spawn

CLIENTS = 4
ROUND_S = 2.0
ROUNDS = {0: 4, 10: 4, 50: 4}  # rounds per mode for each count of extra segments (2 for K = 10, 50 swung 0.09 between runs)
FANS = 8
ELECTRONICS_HEADING = "The latest in electronics"
MOBILE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
DEMO_HOST, PLAIN_HOST = "localhost", "127.0.0.1"
WATCHDOG_S = 115


def bench_settings(workdir: Path) -> Path:
    """Test settings plus PAGE_CACHE_SECONDS from the environment (one gunicorn with, one without)."""
    folder = workdir / "settings"
    folder.mkdir(exist_ok=True)
    (folder / "tl_bench_settings.py").write_text(
        "import os\nfrom cms.settings.test import *  # noqa\n"
        "PERSONALIZATION = {**PERSONALIZATION, 'PAGE_CACHE_SECONDS': int(os.environ['TL_PAGE_CACHE_SECONDS'])}  # noqa\n"
    )
    return folder


def start_gunicorn(env: dict, workdir: Path, page_cache_seconds: int) -> int:
    env = {**env, "DJANGO_SETTINGS_MODULE": "tl_bench_settings", "TL_PAGE_CACHE_SECONDS": str(page_cache_seconds),
           "PYTHONPATH": f"{bench_settings(workdir)}:{REPO_ROOT}"}
    return faults.start_web(env, workdir, f"gunicorn-{page_cache_seconds}.log")


def prepare_content() -> list[str]:
    """Fans who answered the survey (an asking survey is never cached), the plain homepage."""
    from _common import make_electronics_fan
    from django.test import RequestFactory
    from wagtail.models import Page

    from cms.models import HomePage
    from tailored import conf, services

    fans = [f"{n:032x}" for n in range(1, FANS + 1)]
    for fan in fans:
        make_electronics_fan(fan)
        conf.get_profile_store().set_preferences(fan, ["electronics"])
    request = RequestFactory(HTTP_USER_AGENT=DESKTOP_CHROME_UA)
    request.cookies["tl_consent"] = CONSENT_COOKIE_VALUE
    request.cookies["tl_vid"] = signed_visitor_id(fans[0])
    if not Page.objects.filter(slug="plain-home").exists():
        sibling("ssr_overhead").make_plain_home(HomePage.objects.get(), services.resolve_visitor(request.get("/")))
    return fans


def add_segments(total: int) -> None:
    """Enabled segments reading context and behaviour, as a grown site has: `total` in all."""
    from tailored.models import Segment

    for n in range(Segment.objects.filter(slug__startswith="bench-").count(), total):
        rule = {"any": [{"field": "context.device", "op": "eq", "value": "tablet"},
                        {"count": {"event": "page_view", "category": "books", "within_hours": 24 * (1 + n % 7)}, "op": "gte", "value": 2 + n}]}
        Segment.objects.create(name=f"Bench segment {n}", slug=f"bench-{n}", rule=rule, enabled=True)


class Load:
    """CLIENTS keep-alive threads requesting one URL for a while; responses checked."""

    def __init__(self, fans: list[str]):
        self.fans = fans

    def run(self, url: str, host: str, must_show: str, seconds: float) -> float:
        import httpx

        done, errors, stop = [0], [], time.monotonic() + seconds

        def client(index: int) -> None:
            fan = self.fans[index % len(self.fans)]
            cookies = {"tl_consent": CONSENT_COOKIE_VALUE, "tl_vid": signed_visitor_id(fan)}
            headers = {"User-Agent": DESKTOP_CHROME_UA, "Host": host}
            with httpx.Client(headers=headers, cookies=cookies, timeout=10.0) as http:
                while time.monotonic() < stop:
                    response = http.get(url)
                    if response.status_code != 200 or must_show not in response.text:
                        errors.append(response.status_code)
                    done[0] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise AssertionError(f"{len(errors)} wrong answers from {url} ({host}): {errors[:5]}")
        return done[0] / (time.monotonic() - started)


def throughput(load: Load, modes: dict[str, tuple[str, str]], rounds: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    for number in range(rounds):
        for mode in modes if number % 2 == 0 else list(reversed(modes)):
            url, host = modes[mode]
            rates[mode].append(load.run(url, host, ELECTRONICS_HEADING, ROUND_S))
    return {mode: statistics.median(values) for mode, values in rates.items()}


def nginx_hit_ratio(upstream_port: int, workdir: Path) -> float:
    """The anonymous mix through nginx with the shipped config: HIT / all answers."""
    import httpx

    from cms.models import CategoryPage, LandingPage, ProductPage

    port = free_port()
    site = (REPO_ROOT / "docs/deploy/nginx.conf").read_text()
    for shipped, ours in (("/var/cache/nginx/tailored", str(workdir / "nginx-cache")),
                          ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
                          ("listen 80;", f"listen 127.0.0.1:{port};")):
        site = site.replace(shipped, ours)
    (workdir / "tailored.conf").write_text(site)
    temp = "".join(f"{kind}_temp_path {workdir / ('nginx-' + kind)};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (workdir / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'nginx-error.log'} warn;\n"
        f"events {{ worker_connections 256; }}\nhttp {{\naccess_log off;\n{temp}include {workdir / 'tailored.conf'};\n}}\n")
    nginx = next((p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.path.exists(p)), None)
    if nginx is None:
        sys.exit("nginx is not installed: `make system-packages` installs Debian's nginx-light (as root)")
    spawn([nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf")])
    from urllib.parse import urlsplit

    pages = [LandingPage.objects.live().get(slug="good-morning"), CategoryPage.objects.live().order_by("title").first(),
             ProductPage.objects.live().order_by("title").first()]
    paths = ["/", *(urlsplit(page.url).path for page in pages)]  # absolute URLs: there are two sites
    visitors = [({"User-Agent": DESKTOP_CHROME_UA}, {}), ({"User-Agent": MOBILE_UA}, {}),
                ({"User-Agent": DESKTOP_CHROME_UA}, {"tl_consent": "none"})]
    statuses = []
    with httpx.Client(timeout=10.0) as http:
        for _ in range(100):
            try:
                http.get(f"http://127.0.0.1:{port}/", headers={"Host": DEMO_HOST})
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        for number in range(480):
            headers, cookies = visitors[number % len(visitors)]
            path = paths[(number // len(visitors)) % len(paths)]
            response = http.get(f"http://127.0.0.1:{port}{path}", headers={**headers, "Host": DEMO_HOST}, cookies=cookies)
            statuses.append(response.headers.get("X-Cache-Status", "none"))
    progress(f"nginx answers: { {s: statuses.count(s) for s in sorted(set(statuses))} }")
    return statuses.count("HIT") / len(statuses)


def main() -> None:
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("watchdog: the bench ran over two minutes"))
    signal.alarm(WATCHDOG_S)
    workdir = scratch_dir()
    redis = Redis(workdir)
    redis.start()
    progress(f"redis-server on 127.0.0.1:{redis.port}; loading the demo")
    env = setup(workdir, redis.url)
    fans = prepare_content()
    cached_port = start_gunicorn(env, workdir, 300)
    uncached_port = start_gunicorn(env, workdir, 0)
    progress(f"gunicorn (2 workers) with the page cache on {cached_port}, without on {uncached_port}")
    load = Load(fans)
    rates: dict[int, dict[str, float]] = {}
    for extra in ROUNDS:
        add_segments(extra)
        if extra:
            time.sleep(5.5)  # SEGMENT_REFRESH_SECONDS: every worker now evaluates the new segments
        modes = {"personalized": (f"http://127.0.0.1:{uncached_port}/", DEMO_HOST),
                 "plain": (f"http://127.0.0.1:{uncached_port}/", PLAIN_HOST)}
        if extra == 0:
            modes["cached"] = (f"http://127.0.0.1:{cached_port}/", DEMO_HOST)
        for url, host in modes.values():  # warm both workers of each server
            load.run(url, host, ELECTRONICS_HEADING, 0.5)
        rates[extra] = throughput(load, modes, ROUNDS[extra])
        shown = ", ".join(f"{mode} {rate:.1f}/s" for mode, rate in rates[extra].items())
        progress(f"{extra:2d} extra segments: {shown}; personalized/plain {rates[extra]['personalized'] / rates[extra]['plain']:.3f}")
    hit_ratio = nginx_hit_ratio(uncached_port, workdir)
    ratios = {extra: rate["personalized"] / rate["plain"] for extra, rate in rates.items()}
    print_headline({
        "cached_requests_per_s": rates[0]["cached"],
        "personalized_requests_per_s": rates[0]["personalized"],
        "plain_requests_per_s": rates[0]["plain"],
        **{f"personalized_over_plain_ratio_k{extra}": ratio for extra, ratio in ratios.items()},
        "nginx_hit_ratio": hit_ratio,
        "personalized_over_plain_ratio": min(ratios.values()),
        "cached_personalized_over_plain_ratio": rates[0]["cached"] / rates[0]["plain"],
    })
    signal.alarm(0)


if __name__ == "__main__":
    main()
