"""The Next.js example (examples/nextjs, issue 23) against the live demo: a visitor accepts on the
Next.js page, views three electronics products on the shop, and the Next.js homepage then shows
the electronics hero with exactly the variants Wagtail's own page shows for the same cookies; a
visitor who declines sends no event. Both apps run on the same host, so they share the cookies.

Needs Node.js and npm (make system-packages): the fixture installs the SDK and the example from
their lockfiles and builds them once (again only when a source is newer than the build)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_foundation_journey import ELECTRONICS_HERO, electronics_products, hero

ROOT = Path(__file__).parents[2]
SDK = ROOT / "sdk" / "js"
EXAMPLE = ROOT / "examples" / "nextjs"
ENV = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1"}

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="Node.js and npm are not installed (make system-packages)")


def _newest(*paths: Path) -> float:
    return max((f.stat().st_mtime for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()), default=0.0)


def _stale(target: Path, *sources: Path) -> bool:
    return not target.exists() or target.stat().st_mtime < _newest(*sources)


@pytest.fixture(scope="module")
def nextjs_build() -> Path:
    """The SDK and the example installed from their lockfiles and built (skipped when fresh)."""
    def run(*command: str, cwd: Path) -> None:
        subprocess.run(command, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, timeout=900)

    if _stale(SDK / "node_modules" / ".installed", SDK / "package-lock.json"):
        run("npm", "ci", "--no-audit", "--no-fund", cwd=SDK)
        (SDK / "node_modules" / ".installed").touch()
    if _stale(SDK / "packages" / "client" / "dist" / "index.js", SDK / "packages" / "client" / "src", SDK / "packages" / "react" / "src"):
        run("npm", "run", "--silent", "build", cwd=SDK)
    if _stale(EXAMPLE / "node_modules" / ".package-lock.json", EXAMPLE / "package-lock.json"):
        run("npm", "ci", "--no-audit", "--no-fund", cwd=EXAMPLE)
    if _stale(EXAMPLE / ".next" / "BUILD_ID", EXAMPLE / "app", EXAMPLE / "node_modules" / ".package-lock.json", SDK / "packages" / "client" / "dist", SDK / "packages" / "react" / "dist"):
        run("node_modules/.bin/next", "build", cwd=EXAMPLE)
    return EXAMPLE


@pytest.fixture
def nextjs_url(nextjs_build, site_url):
    """`next start` on a free loopback port, rendering from the live demo. The browser reaches it
    by the live server's host name, so the two apps share the visitor's cookies."""
    parts = urlsplit(site_url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Django's live server listens on IPv4; Node may resolve "localhost" to ::1 first.
    upstream = f"http://127.0.0.1:{parts.port}"
    server = subprocess.Popen(
        ["node_modules/.bin/next", "start", "-H", "127.0.0.1", "-p", str(port)], cwd=nextjs_build,
        env={**ENV, "TAILORED_URL": upstream}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("next start did not come up")
            time.sleep(0.2)
    yield f"http://{parts.hostname}:{port}"
    server.terminate()
    server.wait(10)


def _variants(page) -> list[str | None]:
    return [el.get_attribute("data-tl-variant") for el in page.locator("[data-tl-variant]").all()]


def _tracked(request) -> bool:
    return request.method == "POST" and request.url.endswith("/graphql") and '"track_events"' in (request.post_data or "")


def test_the_nextjs_homepage_shows_the_fans_variants_as_wagtail_does(site_url, nextjs_url, browser):
    fan = browser.new_context(user_agent=DESKTOP_CHROME)
    page = fan.new_page()
    page.goto(nextjs_url + "/")
    assert _variants(page)[0] == "fallback"  # anonymous: the fallback hero, rendered on the server
    with page.expect_navigation():
        page.get_by_role("button", name="Accept all").click()  # setConsent through the example's /graphql
    assert {c["name"] for c in fan.cookies()} >= {"tl_consent", "tl_vid"}
    for url in electronics_products(site_url):
        with page.expect_response(lambda r: r.url.endswith("/api/events")) as response:
            page.goto(url)
        assert response.value.status == 202

    with page.expect_request(_tracked, timeout=20_000) as tracked:  # the hero's impression
        page.goto(nextjs_url + "/")
        expect(page.locator("[data-block=hero] h2").first).to_have_text(ELECTRONICS_HERO)
    assert '"impression"' in tracked.value.post_data
    next_variants = _variants(page)

    page.goto(site_url + "/")
    expect(hero(page)).to_have_text(ELECTRONICS_HERO)
    assert _variants(page) == next_variants
    fan.close()


def test_a_visitor_who_declines_on_the_nextjs_page_sends_nothing(nextjs_url, browser):
    visitor = browser.new_context(user_agent=DESKTOP_CHROME)
    page = visitor.new_page()
    sent = []
    page.on("request", lambda request: sent.append(request) if _tracked(request) else None)
    page.goto(nextjs_url + "/")
    page.get_by_role("button", name="Decline all").click()
    expect(page.get_by_role("button", name="Decline all")).to_have_count(0)
    page.mouse.wheel(0, 2000)
    page.wait_for_timeout(2500)  # longer than an impression and a batch's delay
    page.reload()
    page.wait_for_timeout(2500)
    assert sent == []
    assert {c["name"]: c["value"] for c in visitor.cookies()}.get("tl_consent") == "none"
    assert "tl_vid" not in {c["name"] for c in visitor.cookies()}
    visitor.close()
