"""Tailored installs into a fresh Wagtail site (issue 13, item 6).

The wheel is built once from this repository, then installed into new virtual environments
(dependencies from the package index) and into sites made by `wagtail start`, following the
README's steps to the letter. Each site gives its home page a PersonalizedBlock and is asked
for it as a phone and as a desktop browser:

- leg 1: Python 3.11, no extras, Django templates only (what `wagtail start` makes);
- leg 2: the same site with the `graphql` extra, asked through /graphql/;
- leg 3: Python 3.12 with Django 6.0 and the newest Wagtail 7.x, installed first and kept;
- leg 4: Wagtail 7.0 (LTS), the floor pyproject.toml declares.

Nothing runs in this process's Django: every step is a subprocess of the site's own venv.
Run with `pytest -m integration -s tests/integration/` to watch the steps.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .wagtail_site import (
    REPO_ROOT,
    Venv,
    WagtailSite,
    add_graphql,
    add_personalized_body,
    build_wheel,
    find_python,
    install_tailored,
    log,
)

pytestmark = pytest.mark.integration

MOBILE_TEXT = "Mobile hello"
FALLBACK_TEXT = "Everyone hello"
DEMO_SECRET = b"tailored-insecure-development-key"
# What the site needs without extras: none of these may be installed by `pip install wagtail-tailored`.
EXTRA_MODULES = ["sklearn", "scipy", "numpy", "joblib", "grapple", "graphene_django"]



def py311() -> str:
    return find_python("3.11", "TAILORED_PYTHON311", ["/root/.pyenv/versions/3.11.7/bin/python"])


def py312() -> str:
    return find_python("3.12", "TAILORED_PYTHON312", ["/root/.pyenv/versions/3.12.1/bin/python"])


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="tailored-install-"))
    log(f"working directory {path}")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def wheel(workdir) -> Path:
    started = time.monotonic()
    dist = workdir / "dist"
    dist.mkdir()
    path = build_wheel(dist)
    log(f"built {path.name} in {time.monotonic() - started:.1f}s")
    return path


@dataclass
class Leg:
    venv: Venv
    site: WagtailSite
    versions: dict[str, str | None]
    seconds: float
    extras: list[str] = field(default_factory=list)


def fresh_site(venv: Venv, parent: Path) -> WagtailSite:
    """`wagtail start mysite`, the README's install steps, and the site's PersonalizedBlock."""
    site = WagtailSite.start(venv, parent)
    install_tailored(site)
    add_personalized_body(site)
    return site


@pytest.fixture(scope="module")
def leg1(workdir, wheel) -> Leg:
    """Python 3.11: a venv with only `pip install <wheel>`, and a fresh site using it."""
    log("=== leg 1: Python 3.11, no extras, Django templates ===")
    started = time.monotonic()
    root = workdir / "leg1"
    root.mkdir()
    venv = Venv.create(py311(), root / "venv")
    log("README step 1: pip install wagtail-tailored (the wheel)")
    venv.pip("install", "--quiet", wheel)
    versions = venv.versions("Django", "wagtail", "wagtail-tailored")
    site = fresh_site(venv, root)
    return Leg(venv, site, versions, time.monotonic() - started)


# ---------------------------------------------------------------------------------------------
# Assertions shared by the legs


def excerpt(html: str, needle: str | None = None, width: int = 1500) -> str:
    """The part of a page worth reading in a failure: around `needle`, else the body."""
    at = html.find(needle) if needle else -1
    if at < 0:
        at = max(html.find("<body"), 0)
    return html[max(at - 200, 0): at + width]


def assert_serves_personalized_home(report: dict, venv: Venv) -> None:
    """The phone sees the mobile variant and the desktop the fallback, both with the consent
    banner and the tracker, rendered by Django templates from the installed wheel."""
    assert Path(report["tailored_file"]).is_relative_to(venv.path), (
        f"the site imported tailored from {report['tailored_file']}, not from its venv {venv.path}"
    )
    assert not Path(report["tailored_file"]).is_relative_to(REPO_ROOT), "the site imported the repository, not the wheel"
    assert report["template_backends"] == ["django.template.backends.django.DjangoTemplates"], (
        f"expected a Django-templates-only site, got {report['template_backends']}"
    )
    expected = {"mobile": (MOBILE_TEXT, FALLBACK_TEXT), "desktop": (FALLBACK_TEXT, MOBILE_TEXT)}
    consent_form = re.compile(r"<form\b[^>]*\baction=[\"']" + re.escape(report["consent_url"]) + r"[\"']")
    for name, (shown, hidden) in expected.items():
        page = report["pages"][name]
        html = page["html"]
        assert page["status"] == 200, f"{name}: GET / answered {page['status']}:\n{excerpt(html)}"
        assert shown in html, f"{name}: the home page lacks {shown!r}:\n{excerpt(html, hidden)}"
        assert hidden not in html, f"{name}: the home page shows {hidden!r}:\n{excerpt(html, hidden)}"
        assert consent_form.search(html), (
            f"{name}: no consent banner (a form posting to {report['consent_url']}):\n{excerpt(html, 'consent')}"
        )
        assert "tracker.js" in html, f"{name}: no tracker script (tracker.js):\n{excerpt(html, '</body>')}"
    log(f"  SSR ok: Python {report['python']}, Django {report['django']}, Wagtail {report['wagtail']}")


def personalized_blocks(answer: dict) -> list[dict]:
    data = answer["json"] or {}
    assert answer["status"] == 200 and not data.get("errors"), (
        f"/graphql/ answered {answer['status']}: {data.get('errors') or answer['text']}"
    )
    page = data["data"]["page"]
    assert page is not None, f"page(urlPath: \"/\") found no page: {data}"
    return [block for block in page["body"] if block["blockType"] == "PersonalizedBlock"]


# ---------------------------------------------------------------------------------------------
# The wheel


def test_wheel_installs_only_the_tailored_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = {name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info")}
        assert len(dist_info) == 1, f"expected one .dist-info folder, found {dist_info}"
        (dist_info,) = dist_info
        payload = [name for name in names if not name.startswith(f"{dist_info}/")]
        top_level = {name.split("/")[0] for name in payload}
        assert top_level == {"tailored"}, f"the wheel installs {sorted(top_level)} besides tailored/"
        stray_py = [name for name in names if name.endswith(".py") and not name.startswith("tailored/")]
        assert not stray_py, f"Python files outside tailored/: {stray_py}"
        if f"{dist_info}/top_level.txt" in names:
            declared = set(archive.read(f"{dist_info}/top_level.txt").decode().split())
            assert declared == {"tailored"}, f"top_level.txt declares {declared}"
        demo = [name for name in names if name.startswith("cms/") or "/cms/" in name]
        assert not demo, f"the demo site ships in the wheel: {demo}"
        leaking = [name for name in names if DEMO_SECRET in archive.read(name)]
        assert not leaking, f"files holding the demo's insecure SECRET_KEY: {leaking}"
    log(f"  wheel ok: {len(payload)} files, all under tailored/")


# ---------------------------------------------------------------------------------------------
# Leg 1: Python 3.11, no extras


def test_leg1_fresh_site_without_extras(leg1):
    assert not leg1.extras, "leg 1 must run before leg 2 installs the graphql extra into its venv"
    started = time.monotonic()
    leg1.venv.pip_check()
    log(f"  leg 1 installed Django {leg1.versions['Django']}, Wagtail {leg1.versions['wagtail']}")
    assert leg1.venv.python_version().startswith("3.11."), f"leg 1 runs Python {leg1.venv.python_version()}"
    installed = {module for module, found in leg1.venv.importable(*EXTRA_MODULES).items() if found}
    assert not installed, f"`pip install wagtail-tailored` pulled in extras' packages: {sorted(installed)}"
    assert_serves_personalized_home(leg1.site.check("ssr"), leg1.venv)
    log(f"leg 1 took {leg1.seconds + time.monotonic() - started:.0f}s")


# ---------------------------------------------------------------------------------------------
# Leg 2: the graphql extra


def test_leg2_graphql_extra_answers_like_ssr(leg1, wheel):
    log("=== leg 2: the graphql extra, in leg 1's venv and site ===")
    started = time.monotonic()
    leg1.extras.append("graphql")
    leg1.venv.pip("install", "--quiet", f"{wheel}[graphql]")
    leg1.venv.pip_check()
    versions = leg1.venv.versions("Django", "wagtail", "graphene-django", "wagtail-grapple")
    log(f"  leg 2 has {versions}")
    add_graphql(leg1.site)

    report = leg1.site.check("graphql")
    expected = {"mobile": (MOBILE_TEXT, FALLBACK_TEXT), "desktop": (FALLBACK_TEXT, MOBILE_TEXT)}
    variants = {}
    for name, (shown, hidden) in expected.items():
        blocks = personalized_blocks(report["answers"][name])
        assert len(blocks) == 1, f"{name}: expected one PersonalizedBlock in the home page's body, got {blocks}"
        (block,) = blocks
        content = " ".join(str(child.get("value") or child.get("rawValue")) for child in block["blocks"])
        assert shown in content, f"{name}: the chosen content lacks {shown!r}: {block}"
        assert hidden not in str(block), f"{name}: the answer carries {hidden!r}: {block}"
        variants[name] = block["variant"]
    assert variants["desktop"] == "fallback", f"the desktop browser got variant {variants['desktop']!r}"
    assert variants["mobile"] != "fallback", "the phone got the fallback"

    # The extra changes nothing for SSR.
    assert_serves_personalized_home(leg1.site.check("ssr"), leg1.venv)
    log(f"leg 2 took {time.monotonic() - started:.0f}s")


# ---------------------------------------------------------------------------------------------
# Leg 3: Python 3.12, Django 6.0, the newest Wagtail 7.x


def pinned_first(workdir: Path, wheel: Path, name: str, python: str, *requirements: str) -> Leg:
    """A venv where the site's own Django and Wagtail are installed first; installing the wheel
    must keep them."""
    started = time.monotonic()
    root = workdir / name
    root.mkdir()
    venv = Venv.create(python, root / "venv")
    venv.pip("install", "--quiet", *requirements)
    before = venv.versions("Django", "wagtail")
    log(f"  {name}: {' '.join(requirements)} gave Django {before['Django']}, Wagtail {before['wagtail']}")
    log("README step 1: pip install wagtail-tailored (the wheel)")
    venv.pip("install", "--quiet", wheel)
    after = venv.versions("Django", "wagtail")
    assert after == before, f"installing the wheel changed the site's Django/Wagtail: {before} -> {after}"
    venv.pip_check()
    site = fresh_site(venv, root)
    return Leg(venv, site, after, time.monotonic() - started)


def test_leg3_python312_django60_newest_wagtail7(workdir, wheel):
    log("=== leg 3: Python 3.12, Django 6.0, newest Wagtail 7.x ===")
    leg = pinned_first(workdir, wheel, "leg3", py312(), "Django>=6.0,<6.1", "wagtail>=7,<8")
    assert leg.versions["Django"].startswith("6.0"), f"leg 3 got Django {leg.versions['Django']}"
    assert leg.versions["wagtail"].startswith("7."), f"leg 3 got Wagtail {leg.versions['wagtail']}"
    started = time.monotonic()
    assert_serves_personalized_home(leg.site.check("ssr"), leg.venv)
    log(f"leg 3 took {leg.seconds + time.monotonic() - started:.0f}s")


# ---------------------------------------------------------------------------------------------
# Leg 4: Wagtail 7.0 LTS, the declared floor


def test_leg4_wagtail70_lts(workdir, wheel):
    log("=== leg 4: Python 3.11, Wagtail 7.0 LTS ===")
    leg = pinned_first(workdir, wheel, "leg4", py311(), "wagtail>=7.0,<7.1")
    assert leg.versions["wagtail"].startswith("7.0"), f"leg 4 got Wagtail {leg.versions['wagtail']}"
    started = time.monotonic()
    assert_serves_personalized_home(leg.site.check("ssr"), leg.venv)
    log(f"leg 4 took {leg.seconds + time.monotonic() - started:.0f}s")
