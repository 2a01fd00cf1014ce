"""A web process imports none of numpy, scipy, scikit-learn or joblib to serve a public page or an
admin page that does not compute with them (issue 13, item 4), and the site runs without them.

What a process has imported can only be seen in a fresh one: each case runs this module as a
script (`python -m tests.test_import_weight MODE DB`) in a subprocess that sets up Django on a
copy of a SQLite database migrated once for the module (with the demo shop and a page whose only
section is a recommendation block), serves pages with django.test.Client and prints one JSON line.

Without the `ml` extra is simulated by a meta-path finder, installed before django.setup(), that
refuses to import those four packages, as a site installed without them would.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "scipy", "sklearn", "joblib")
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
PICKS_SLUG = "picks"  # the page whose only section is a recommendation block
PUBLIC_PAGES = ("/", f"/{PICKS_SLUG}/")


# --- the parent: pytest ----------------------------------------------------------------------


def run_child(mode: str, database: Path, timeout: float = 240) -> dict:
    """Run this module in a fresh interpreter; returns the JSON it printed last."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"DJANGO_SETTINGS_MODULE": "cms.settings.test", "SQLITE_PATH": str(database), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_import_weight", mode],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert done.returncode == 0, f"{mode} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory) -> Path:
    """Migrated once, with the demo shop: every case works on its own copy."""
    database = tmp_path_factory.mktemp("import-weight") / "demo.sqlite3"
    run_child("build", database, timeout=600)
    return database


@pytest.fixture
def database(demo_database, tmp_path) -> Path:
    copy = tmp_path / "db.sqlite3"
    shutil.copyfile(demo_database, copy)
    return copy


def test_public_pages_import_no_ml_package(database):
    found = run_child("public", database)
    assert found["statuses"] == dict.fromkeys(PUBLIC_PAGES, 200)
    assert found["recommended_products"] > 0  # trending: no model is trained in this process
    assert found["heavy_after_setup"] == []
    assert found["heavy"] == []


def test_admin_pages_that_compute_nothing_import_no_ml_package(database):
    found = run_child("admin", database)
    assert set(found["statuses"].values()) == {200}, found["statuses"]
    assert found["heavy"] == {url: [] for url in found["statuses"]}
    assert found["ml_notice_shown"] is False  # the extra is installed here


def test_without_the_ml_extra_the_site_serves_trending_and_says_why_once(database):
    found = run_child("public-without-ml", database)
    assert found["ml_available"] is False and found["heavy"] == []
    assert found["statuses"] == dict.fromkeys(PUBLIC_PAGES, 200)
    assert found["recommended_products"] > 0  # the fallback: trending products
    # A trained model is on disk; without the extra it is not loaded, and that is said once
    # in the process, not on every request (the pages were served three times).
    assert len(found["ml_warnings"]) == 1, found["ml_warnings"]
    assert "wagtail-tailored[ml]" in found["ml_warnings"][0]


def test_without_the_ml_extra_the_admin_and_commands_name_the_extra(database):
    found = run_child("admin-without-ml", database)
    assert found["dashboard_status"] == 200
    assert found["ml_notice_shown"] is True
    # The reports that are statistics go back to the dashboard with a message naming the extra.
    assert found["lift_report"] == {"status": 302, "location": "/admin/", "message": found["lift_report"]["message"]}
    assert "pip install 'wagtail-tailored[ml]'" in found["lift_report"]["message"]
    assert found["persona_problem"] and "wagtail-tailored[ml]" in found["persona_problem"]
    for command in ("tailored_train", "tailored_evaluate"):
        assert found["commands"][command].startswith(f"{command} needs the ml extra (missing: numpy, scipy, sklearn, joblib)")
    assert found["worker_scored"] == 0  # the worker module imports, and scores nobody
    assert found["heavy"] == []


def test_a_results_view_still_computes_with_the_extra(database):
    """The statistics load with the view that needs them (and only then)."""
    found = run_child("results", database)
    assert found["heavy_before"] == []
    assert found["status"] == 200
    assert {"numpy", "scipy"} <= set(found["heavy_after"])


# --- the child: one fresh process per case ----------------------------------------------------


class RefuseMlPackages:
    """A meta-path finder that refuses numpy, scipy, sklearn and joblib: the site as installed
    without the `ml` extra (what tries to import them gets the ImportError it would get)."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HEAVY:
            raise ModuleNotFoundError(f"No module named {name!r} (the ml extra is not installed)", name=name)
        return None


def heavy_modules() -> list[str]:
    return sorted({name.partition(".")[0] for name in sys.modules} & set(HEAVY))


def setup(without_ml: bool = False) -> None:
    if without_ml:
        sys.meta_path.insert(0, RefuseMlPackages())
    import django

    django.setup()


def build() -> dict:
    """Migrate, load the demo shop, and add a page whose only section is a recommendation block."""
    import io

    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("load_demo", stdout=io.StringIO())
    from cms.models import HomePage, LandingPage

    section = {"type": "recommendations", "value": {"heading": "Picked for you", "strategy": "recommended", "count": 4, "ask_feedback": False}}
    page = HomePage.objects.get().add_child(instance=LandingPage(title="Picks", slug=PICKS_SLUG, body=[section]))
    page.save_revision().publish()
    return {"built": True}


def serve_public(times: int = 1) -> dict:
    """GET the public pages as a desktop browser; how many recommended products /picks/ showed."""
    from django.test import Client

    client = Client(HTTP_USER_AGENT=DESKTOP_UA)
    statuses, products = {}, 0
    for _ in range(times):
        for page in PUBLIC_PAGES:
            response = client.get(page)
            statuses[page] = response.status_code
            if page != "/":
                html = response.content.decode()
                section = html.partition('data-tl-strategy="recommended"')[2]
                products = section.count("data-tl-product=")
    return {"statuses": statuses, "recommended_products": products}


def superuser_client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("weight", "weight@example.com", "weight")
    client = Client(HTTP_USER_AGENT=DESKTOP_UA)
    client.force_login(user)
    return client


def admin_pages() -> dict:
    """The dashboard and the homepage's edit view, each in turn, with what was imported after it."""
    from wagtail.models import Page

    from tailored import ml

    client = superuser_client()
    home = Page.objects.get(depth=2)
    statuses, heavy, notice = {}, {}, False
    for url in ("/admin/", f"/admin/pages/{home.pk}/edit/"):
        response = client.get(url)
        statuses[url], heavy[url] = response.status_code, heavy_modules()
        notice = notice or ml.NOTICE in response.content.decode()
    return {"statuses": statuses, "heavy": heavy, "ml_notice_shown": notice}


def with_a_trained_model_on_disk() -> None:
    """A model directory with a current recommender version, as `tailored_train` leaves it on
    another machine: the site must not load it without the extra, and say so once."""
    import tempfile

    from django.conf import settings
    from django.test import override_settings

    root = Path(tempfile.mkdtemp(prefix="tl-import-weight-models-"))
    version = root / "recommender" / "20250101T000000000000Z"
    version.mkdir(parents=True)
    (version / "metadata.json").write_text("{}")
    (version / "artifact.joblib").write_bytes(b"trained elsewhere")
    (root / "recommender" / "CURRENT").write_text(version.name)
    override_settings(PERSONALIZATION={**settings.PERSONALIZATION, "MODEL_DIR": str(root)}).enable()


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def public_without_ml() -> dict:
    from tailored import ml

    with_a_trained_model_on_disk()
    collected = Collect()
    logging.getLogger("tailored").addHandler(collected)
    found = serve_public(times=3)
    warnings = [message for message in collected.messages if "ml extra" in message]
    return {**found, "ml_available": ml.available(), "ml_warnings": warnings, "heavy": heavy_modules()}


def admin_without_ml() -> dict:
    from django.contrib.messages import get_messages
    from django.core.management import CommandError, call_command

    from tailored import ml
    from tailored.admin_views_personas import current_proposal

    # Otherwise the commands below would train and evaluate for real.
    assert not ml.available(), "the ml packages were not refused"
    client = superuser_client()
    dashboard = client.get("/admin/")
    report = client.get("/admin/personalization-lift/")
    said = [str(message) for message in get_messages(report.wsgi_request)]
    commands = {}
    for command in ("tailored_train", "tailored_evaluate"):
        try:
            call_command(command)
        except CommandError as error:
            commands[command] = str(error)
    # The stream worker scores profiles with the models: without the extra it still starts.
    import tailored.management.commands.tailored_worker  # noqa: F401
    from tailored.ml import scoring
    return {
        "dashboard_status": dashboard.status_code,
        "ml_notice_shown": ml.NOTICE in dashboard.content.decode(),
        "lift_report": {"status": report.status_code, "location": report.get("Location"), "message": " ".join(said)},
        "persona_problem": current_proposal("anyone")[1],
        "commands": commands,
        "worker_scored": scoring.score_visitors({"someone"}),
        "heavy": heavy_modules(),
    }


def results() -> dict:
    """The Personalization lift report with counts in both groups: scipy loads with the view."""
    from datetime import UTC, datetime

    from django.conf import settings
    from django.test import override_settings

    from tailored.models import HoldoutCount

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for group, goal, visitors, conversions in (("holdout", "", 400, 0), ("personalized", "", 600, 0),
                                               ("holdout", "purchase", 0, 20), ("personalized", "purchase", 0, 45)):
        HoldoutCount.objects.create(group=group, goal=goal, hour=hour, visitors=visitors, conversions=conversions)
    client = superuser_client()
    before = heavy_modules()
    holdout_on = {**settings.PERSONALIZATION, "GLOBAL_HOLDOUT_PERCENT": 5, "GLOBAL_HOLDOUT_GOALS": ["purchase"]}
    with override_settings(PERSONALIZATION=holdout_on):
        response = client.get("/admin/personalization-lift/")
    return {"heavy_before": before, "status": response.status_code, "heavy_after": heavy_modules()}


def child(mode: str) -> dict:
    setup(without_ml=mode.endswith("-without-ml"))
    heavy_after_setup = heavy_modules()
    if mode == "build":
        return build()
    if mode == "public":
        return {**serve_public(), "heavy_after_setup": heavy_after_setup, "heavy": heavy_modules()}
    if mode == "admin":
        serve_public()  # the process's first request is a public page, as on a live site
        return admin_pages()
    if mode == "public-without-ml":
        return public_without_ml()
    if mode == "admin-without-ml":
        return admin_without_ml()
    if mode == "results":
        return results()
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1])), flush=True)
