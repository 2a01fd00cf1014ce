"""The shipped proxy configs in front of the demo shop (issue 21 item 6): Debian's nginx with
docs/deploy/nginx.conf and Varnish with docs/deploy/varnish.vcl, each started on a free port,
cache what the app lets them share and nothing else.

Four kinds of visitor alternate over the homepage (varies by device and daypart), a landing
page, a category and a product page: anonymous on a desktop, anonymous on a phone, one who
declined, and a consenting electronics fan. Every page nginx answers is compared with what the
app itself renders for that visitor (asked directly, with the audience key nginx computed):
no visitor ever gets another audience's variants, and the fan always gets their own page.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.management import call_command

from cms.models import CategoryPage, HomePage, LandingPage, ProductPage
from tests.conftest import MOBILE_UA
from tests.helpers import (
    CONSENT_GRANTED,
    ELECTRONICS_HERO,
    make_fan,
    signed_visitor_id,
    ssr_variants,
)

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
DESKTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
FAN = "e" * 32
REQUESTS = 500


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def binary(name: str, package: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    assert found, f"{name} is missing: `make system-packages` installs Debian's {package}"
    return found


def shipped(name: str, replacements: list[tuple[str, str]]) -> str:
    """A shipped config with its marked lines pointed at this test's app, port and cache."""
    text = (DEPLOY / name).read_text()
    for line, ours in replacements:
        assert line in text, f"{line!r} is no longer in docs/deploy/{name}"
        text = text.replace(line, ours)
    return text


def start_nginx(upstream: str, port: int, workdir: Path) -> subprocess.Popen:
    site = shipped("nginx.conf", [
        ("/var/cache/nginx/tailored", str(workdir / "cache")),
        ("server 127.0.0.1:8000;", f"server {upstream};"),
        ("listen 80;", f"listen 127.0.0.1:{port};"),
    ])
    (workdir / "tailored.conf").write_text(site)
    temp_paths = "".join(f"{kind}_temp_path {workdir / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (workdir / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'} warn;\n"
        f"events {{ worker_connections 256; }}\nhttp {{\naccess_log off;\n{temp_paths}include {workdir / 'tailored.conf'};\n}}\n"
    )
    return subprocess.Popen([binary("nginx", "nginx-light"), "-p", str(workdir), "-c", str(workdir / "nginx.conf")])


def start_varnish(upstream: str, port: int, workdir: Path) -> subprocess.Popen:
    host, upstream_port = upstream.split(":")
    vcl = shipped("varnish.vcl", [('.host = "127.0.0.1";', f'.host = "{host}";'), ('.port = "8000";', f'.port = "{upstream_port}";')])
    (workdir / "tailored.vcl").write_text(vcl)
    return subprocess.Popen([
        binary("varnishd", "varnish"), "-F", "-j", "none", "-n", str(workdir / "varnish"),
        "-a", f"127.0.0.1:{port}", "-f", str(workdir / "tailored.vcl"), "-s", "malloc,64m",
    ], stdout=subprocess.DEVNULL)


@pytest.fixture(params=["nginx", "varnish"])
def proxy(request, live_server, memory_store, tmp_path):
    """The proxy with its shipped config in front of the live demo shop; stopped whatever happens."""
    call_command("load_demo", stdout=io.StringIO())
    port = free_port()
    start = start_nginx if request.param == "nginx" else start_varnish
    process = start(live_server.url.removeprefix("http://"), port, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, f"{request.param} exited"
                assert time.monotonic() < deadline, f"{request.param} did not start listening"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", live_server.url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


VISITORS = {
    "anonymous desktop": ({"User-Agent": DESKTOP_UA}, {}),
    "anonymous mobile": ({"User-Agent": MOBILE_UA}, {}),
    "declined": ({"User-Agent": DESKTOP_UA}, {"tl_consent": "none"}),
    "fan": ({"User-Agent": DESKTOP_UA}, {"tl_consent": CONSENT_GRANTED, "tl_vid": signed_visitor_id(FAN)}),
}


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())} if cookies else {}


@pytest.mark.django_db(transaction=True)
def test_the_proxy_shares_what_may_be_shared_and_never_leaks_a_variant(proxy):
    proxy_url, app_url = proxy
    make_fan(FAN)
    paths = [
        "/",
        LandingPage.objects.live().get(slug="good-morning").url,
        CategoryPage.objects.live().order_by("title").first().url,
        ProductPage.objects.live().order_by("title").first().url,
    ]
    statuses: dict[tuple[str, str], list[str]] = {}
    leaks = []
    with httpx.Client(timeout=20) as http:
        for number in range(REQUESTS):
            name = list(VISITORS)[number % len(VISITORS)]
            path = paths[(number // len(VISITORS)) % len(paths)]
            headers, cookies = VISITORS[name]
            served = http.get(proxy_url + path, headers={**headers, **cookie_header(cookies)})
            assert served.status_code == 200, (name, path, served.status_code)
            key = served.headers["X-Tailored-Audience"]
            # What the app renders for this visitor, asked directly with the key nginx computed.
            own = http.get(app_url + path, headers={**headers, **cookie_header(cookies), "X-Tailored-Audience": key})
            if ssr_variants(served.text) != ssr_variants(own.text):
                leaks.append((number, name, path, key))
            if name == "fan" and path == "/":
                assert ELECTRONICS_HERO in served.text
            statuses.setdefault((name, path), []).append(served.headers["X-Cache-Status"])

    assert leaks == []
    category, product = paths[2], paths[3]
    for name in ("anonymous desktop", "anonymous mobile", "declined"):
        for path in (category, product, "/"):
            # The first anonymous desktop request of a page fills the copy the declined visitor gets.
            assert set(statuses[(name, path)][1:]) == {"HIT"}, (name, path, statuses[(name, path)])
    assert "HIT" not in statuses[("fan", "/")]  # the fan's pages are never stored nor served from the cache
    anonymous = [s for (name, _), seen in statuses.items() if name != "fan" for s in seen]
    assert anonymous.count("HIT") / len(anonymous) >= 0.9


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("proxy", ["varnish"], indirect=True)
def test_publishing_purges_every_audiences_copy_from_varnish(proxy, settings):
    """Wagtail's frontend cache invalidation (the HTTPBackend, as a site configures it for the
    shipped VCL) sends PURGE on publish; the next visitor of each audience gets a fresh page."""
    from wagtail.contrib.frontend_cache.utils import purge_page_from_cache

    proxy_url, _ = proxy
    home = HomePage.objects.get()  # one copy per audience key
    url, host = proxy_url + urlsplit(home.full_url).path, urlsplit(home.full_url).hostname
    with httpx.Client(timeout=20, headers={"Host": host}) as http:
        for agent in (DESKTOP_UA, MOBILE_UA):
            http.get(url, headers={"User-Agent": agent})
            assert http.get(url, headers={"User-Agent": agent}).headers["X-Cache-Status"] == "HIT"
        settings.WAGTAILFRONTENDCACHE = {
            "varnish": {"BACKEND": "wagtail.contrib.frontend_cache.backends.HTTPBackend", "LOCATION": proxy_url},
        }
        purge_page_from_cache(home)
        for agent in (DESKTOP_UA, MOBILE_UA):
            assert http.get(url, headers={"User-Agent": agent}).headers["X-Cache-Status"] == "MISS"


@pytest.mark.django_db(transaction=True)
def test_a_visitor_who_granted_analytics_only_gets_their_experiment_arm(proxy):
    """An experiment is measured, not targeted: analytics consent puts a visitor in it. Their page
    is their own, so the proxy never serves them the shared copy (nor keeps theirs)."""
    from tests.experiments.conftest import make_experiment, running, visitor_in

    make_experiment(arms=[("control", 50, {"variant": "fallback"}), ("electronics", 50, {"variant": "1"})])
    treated = visitor_in(running("hero-test"), "electronics")
    proxy_url, _ = proxy
    analytics_only = {"User-Agent": DESKTOP_UA, **cookie_header({"tl_consent": "analytics", "tl_vid": signed_visitor_id(treated)})}
    with httpx.Client(timeout=20) as http:
        for _ in range(2):
            http.get(proxy_url + "/", headers={"User-Agent": DESKTOP_UA})  # the shared copy: no arm
        shared = http.get(proxy_url + "/", headers={"User-Agent": DESKTOP_UA})
        assert shared.headers["X-Cache-Status"] == "HIT" and ELECTRONICS_HERO not in shared.text
        for _ in range(2):
            served = http.get(proxy_url + "/", headers=analytics_only)
            assert served.headers["X-Cache-Status"] != "HIT" and ELECTRONICS_HERO in served.text
        assert ELECTRONICS_HERO not in http.get(proxy_url + "/", headers={"User-Agent": DESKTOP_UA}).text
