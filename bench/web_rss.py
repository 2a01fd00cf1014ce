"""What a web process weighs after serving a public page (issue 13, item 4).

Migrates a throwaway SQLite database and loads the demo shop once, then, in a fresh interpreter
per case, sets up Django (test settings, the in-process profile store), serves the demo homepage
with django.test.Client and reads the process's resident set (VmRSS in /proc/self/status):

- public page: the venv as installed, the `ml` extra importable (the web process imports none
  of it: it loads with training, scoring, a trained recommender or a report);
- public page without ml: numpy, scipy, scikit-learn and joblib refused by a meta-path finder
  installed before django.setup(), as on a site installed without the extra;
- with ml imported: the first case, then numpy, scipy (stats, special, sparse) and scikit-learn
  imported, which every web process used to carry from its first request.

Run from the repository root: .venv/bin/python bench/web_rss.py (about a minute; Linux only).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO_ROOT, make_temp_dir, print_headline, progress  # noqa: E402

ML_PACKAGES = ("numpy", "scipy", "sklearn", "joblib")
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
CASES = {
    "public": "public page, ml extra importable",
    "public-without-ml": "public page, ml extra refused",
    "with-ml-imported": "public page, then numpy + scipy + sklearn imported",
}


# --- the child: one fresh interpreter per case ------------------------------------------------


class RefuseMlPackages:
    """Refuses numpy, scipy, sklearn and joblib: the site as installed without the `ml` extra."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ML_PACKAGES:
            raise ModuleNotFoundError(f"No module named {name!r} (the ml extra is not installed)", name=name)
        return None


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(mode: str) -> dict:
    if mode == "public-without-ml":
        sys.meta_path.insert(0, RefuseMlPackages())
    import django

    django.setup()
    if mode == "build":
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        call_command("load_demo", stdout=io.StringIO())
        return {}
    from django.test import Client

    after_setup = rss_mb()
    response = Client(HTTP_USER_AGENT=DESKTOP_UA).get("/")
    assert response.status_code == 200, response.status_code
    if mode == "with-ml-imported":
        import numpy  # noqa: F401
        import scipy.sparse  # noqa: F401
        import scipy.special  # noqa: F401
        import scipy.stats  # noqa: F401
        import sklearn  # noqa: F401
    heavy = sorted({name.partition(".")[0] for name in sys.modules} & set(ML_PACKAGES))
    return {"rss_after_setup_mb": after_setup, "rss_mb": rss_mb(), "ml_modules": heavy}


# --- the parent ------------------------------------------------------------------------------


def run_child(mode: str, database: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"DJANGO_SETTINGS_MODULE": "cms.settings.test", "SQLITE_PATH": str(database), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    workdir = make_temp_dir("tl-bench-rss-")
    demo = workdir / "demo.sqlite3"
    progress("migrating a throwaway SQLite database and loading the demo shop")
    run_child("build", demo)
    found = {}
    for mode, label in CASES.items():
        database = workdir / f"{mode}.sqlite3"
        shutil.copyfile(demo, database)  # each process starts from the same data
        found[mode] = run_child(mode, database)
        progress(
            f"{label}: RSS {found[mode]['rss_mb']:.1f} MB after the page "
            f"({found[mode]['rss_after_setup_mb']:.1f} MB after django.setup()); "
            f"ml modules loaded: {', '.join(found[mode]['ml_modules']) or 'none'}"
        )
    print_headline({
        "rss_public_page_mb": found["public"]["rss_mb"],
        "rss_public_page_without_ml_mb": found["public-without-ml"]["rss_mb"],
        "rss_with_ml_imported_mb": found["with-ml-imported"]["rss_mb"],
        "ml_modules_after_public_page": ",".join(found["public"]["ml_modules"]) or "none",
    })


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2])), flush=True)
    else:
        main()
