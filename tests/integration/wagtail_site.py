"""Helpers for the install test: subprocesses with timeouts, virtual environments, and a fresh
`wagtail start` site edited the way the README tells a developer to.

Nothing here imports Django or the plugin: every step runs in a subprocess of its own virtual
environment, as a developer's shell would run it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHECK_SCRIPT = HERE / "site_check.py"

# The apps the README adds to INSTALLED_APPS, in this order, before "wagtail.contrib.forms".
TAILORED_APPS = ["tailored", "tailored.blocks", "tailored.frontend", "tailored.experiments"]
GRAPHQL_APPS = ["grapple", "graphene_django"]

# Steps that reach the package index get long timeouts (a cold pip cache downloads ~40 MB).
PIP_TIMEOUT = 900
STEP_TIMEOUT = 300

# Environment of the test process that must not leak into a developer's fresh site.
_DROPPED_ENV = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE",
                "DJANGO_CONFIGURATION", "COVERAGE_PROCESS_START", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"}


def log(message: str) -> None:
    print(f"[integration] {message}", flush=True)


def tail(text: str | None, lines: int = 60) -> str:
    kept = (text or "").rstrip().splitlines()[-lines:]
    return "\n".join("    " + line for line in kept) or "    (empty)"


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = STEP_TIMEOUT,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run `cmd`, printing it; fail the test with the output's tail when it fails or times out.
    The command runs in its own process group, killed whole on timeout or interruption."""
    cmd = [str(part) for part in cmd]
    log(f"$ {shown(cmd)}    (cwd {cwd})")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        pytest.fail(f"Timed out after {timeout:.0f}s: {shown(cmd)}\n--- stdout (tail)\n{tail(out)}\n"
                    f"--- stderr (tail)\n{tail(err)}", pytrace=False)
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    log(f"  exit {proc.returncode} after {time.monotonic() - started:.1f}s")
    if check and proc.returncode != 0:
        pytest.fail(f"Exit status {proc.returncode}: {shown(cmd)}\n--- stdout (tail)\n{tail(out)}\n"
                    f"--- stderr (tail)\n{tail(err)}", pytrace=False)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def shown(cmd: list[str]) -> str:
    """The command as a shell line, inline scripts (python -c) cut to their first line."""
    return shlex.join(part if "\n" not in part else part.split("\n")[0] + " ..." for part in cmd)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def find_python(version: str, env_var: str, candidates: list[str]) -> str:
    """An interpreter of `version` ("3.12") that runs: $env_var, the running one, `candidates`,
    then PATH (where a pyenv shim may exist without a Python behind it)."""
    options = [os.environ.get(env_var)]
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        options.append(sys.executable)
    options += [*candidates, shutil.which(f"python{version}")]
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    for option in options:
        if not option or not Path(option).exists():
            continue
        answer = subprocess.run([option, "-c", probe], capture_output=True, text=True, timeout=30, env=clean_env())
        if answer.returncode == 0 and answer.stdout.strip() == version:
            return option
    pytest.fail(f"No Python {version} found: set {env_var} to its interpreter.", pytrace=False)


# ---------------------------------------------------------------------------------------------
# Wheel


def build_wheel(outdir: Path) -> Path:
    """The repository's wheel, built the way a release is (isolated build, no dependencies)."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", outdir, REPO_ROOT],
        cwd=outdir, env=clean_env(), timeout=PIP_TIMEOUT)
    wheels = sorted(outdir.glob("wagtail_tailored-*.whl"))
    assert len(wheels) == 1, f"expected one wagtail_tailored wheel in {outdir}, found {[w.name for w in wheels]}"
    return wheels[0]


# ---------------------------------------------------------------------------------------------
# Virtual environments


def clean_env(venv: Path | None = None, **extra: str) -> dict[str, str]:
    """The test process's environment without its Python and Django settings: a fresh shell.
    Pip's cache is left where it is, so reruns are fast."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV and not k.startswith("PYTEST")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@dataclass
class Venv:
    path: Path

    @classmethod
    def create(cls, python: str, path: Path) -> Venv:
        run([python, "-m", "venv", path], cwd=path.parent, env=clean_env())
        return cls(path)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(self.path, **extra)

    def pip(self, *args: str | Path, timeout: float = PIP_TIMEOUT) -> subprocess.CompletedProcess:
        return run([self.python, "-m", "pip", *args], cwd=self.path, env=self.env(), timeout=timeout)

    def python_version(self) -> str:
        out = run([self.python, "-c", "import platform; print(platform.python_version())"], cwd=self.path,
                  env=self.env()).stdout
        return out.strip()

    def versions(self, *dists: str) -> dict[str, str | None]:
        """Installed versions of distributions (None: not installed)."""
        code = (
            "import json, sys\nfrom importlib import metadata\nout = {}\n"
            "for name in sys.argv[1:]:\n"
            "    try:\n        out[name] = metadata.version(name)\n"
            "    except metadata.PackageNotFoundError:\n        out[name] = None\n"
            "print(json.dumps(out))"
        )
        out = run([self.python, "-c", code, *dists], cwd=self.path, env=self.env()).stdout
        return json.loads(out.strip().splitlines()[-1])

    def importable(self, *modules: str) -> dict[str, bool]:
        code = ("import json, sys\nfrom importlib.util import find_spec\n"
                "print(json.dumps({m: find_spec(m) is not None for m in sys.argv[1:]}))")
        out = run([self.python, "-c", code, *modules], cwd=self.path, env=self.env()).stdout
        return json.loads(out.strip().splitlines()[-1])

    def pip_check(self) -> None:
        out = self.pip("check").stdout
        log(f"  pip check: {out.strip()}")


# ---------------------------------------------------------------------------------------------
# The site


class WagtailSite:
    """A site made by `wagtail start mysite` in `parent`, driven through its own venv."""

    def __init__(self, venv: Venv, root: Path):
        self.venv = venv
        self.root = root  # the directory holding manage.py

    @classmethod
    def start(cls, venv: Venv, parent: Path) -> WagtailSite:
        run([venv.bin("wagtail"), "start", "mysite"], cwd=parent, env=venv.env())
        site = cls(venv, parent / "mysite")
        assert (site.root / "manage.py").is_file(), f"`wagtail start mysite` made no {site.root}/manage.py"
        return site

    def env(self) -> dict[str, str]:
        return self.venv.env(DJANGO_SETTINGS_MODULE="mysite.settings.dev")

    # Editing files as a developer would: each anchor must be there exactly once.

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text()

    def edit(self, relative: str, anchor: str, replacement: str) -> None:
        text = self.read(relative)
        found = text.count(anchor)
        assert found == 1, (
            f"{relative}: expected the anchor {anchor!r} once, found it {found} times; the "
            f"`wagtail start` template changed and the README's step no longer applies.\n{text}"
        )
        (self.root / relative).write_text(text.replace(anchor, replacement))
        log(f"  edited {relative}: {anchor.strip()!r} -> {replacement.strip()!r}")

    def insert_before(self, relative: str, anchor: str, insertion: str) -> None:
        self.edit(relative, anchor, insertion + anchor)

    def insert_after(self, relative: str, anchor: str, insertion: str) -> None:
        self.edit(relative, anchor, anchor + insertion)

    def prepend(self, relative: str, text: str) -> None:
        (self.root / relative).write_text(text + self.read(relative))
        log(f"  edited {relative}: prepended {text.strip()!r}")

    def append(self, relative: str, text: str) -> None:
        (self.root / relative).write_text(self.read(relative) + text)
        log(f"  edited {relative}: appended {text.strip()!r}")

    # Running it

    def manage(self, *args: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess:
        return run([self.venv.python, "manage.py", *args], cwd=self.root, env=self.env(), timeout=timeout)

    def check(self, mode: str, timeout: float = STEP_TIMEOUT) -> dict:
        """Run site_check.py in the site (its own venv and settings) and return what it reports."""
        script = self.root / "tailored_site_check.py"
        shutil.copyfile(CHECK_SCRIPT, script)
        out = run([self.venv.python, script.name, mode], cwd=self.root, env=self.env(), timeout=timeout).stdout
        marker = "TAILORED_CHECK_JSON="
        lines = [line for line in out.splitlines() if line.startswith(marker)]
        assert lines, f"site_check.py reported nothing:\n{tail(out)}"
        return json.loads(lines[-1][len(marker):])


# ---------------------------------------------------------------------------------------------
# The README's steps


def install_tailored(site: WagtailSite) -> None:
    """README steps 2-6 (step 1, pip install, is the caller's)."""
    settings = "mysite/settings/base.py"
    log("README step 2: INSTALLED_APPS")
    site.insert_before(settings, '    "wagtail.contrib.forms",\n', "".join(f'    "{app}",\n' for app in TAILORED_APPS))
    log("README step 3: MIDDLEWARE")
    site.insert_after(settings, '    "django.contrib.auth.middleware.AuthenticationMiddleware",\n',
                      '    "tailored.middleware.VisitorMiddleware",\n')
    log("README step 4: URLs")
    site.insert_before("mysite/urls.py", '    path("", include(wagtail_urls)),\n', '    path("", include("tailored.urls")),\n')
    log("README step 5: migrate")
    site.manage("migrate", "--noinput")
    log("README step 6: the base template")
    base = "mysite/templates/base.html"
    site.prepend(base, "{% load tailored %}\n")
    site.insert_before(base, "</head>", "    {% tailored_head %}\n    ")
    site.insert_before(base, "</body>", "    {% tailored_body %}\n    ")


def add_personalized_body(site: WagtailSite) -> None:
    """The site's own work: a StreamField with a PersonalizedBlock on HomePage, rendered by the
    home page template, and its migration."""
    log("Site work: HomePage.body with a PersonalizedBlock")
    models = "home/models.py"
    site.insert_after(models, "from wagtail.models import Page\n", (
        "from wagtail.admin.panels import FieldPanel\n"
        "from wagtail.fields import StreamField\n\n"
        "from tailored.blocks.personalized import PersonalizedBlock\n"
    ))
    site.edit(models, "class HomePage(Page):\n    pass\n", (
        "class HomePage(Page):\n"
        '    body = StreamField([("personalized", PersonalizedBlock())], blank=True)\n\n'
        '    content_panels = Page.content_panels + [FieldPanel("body")]\n'
    ))
    site.edit("home/templates/home/home_page.html", "{% include 'home/welcome_page.html' %}", "{{ page.body }}")
    site.manage("makemigrations", "home")
    site.manage("migrate", "--noinput")


def add_graphql(site: WagtailSite) -> None:
    """The README's GraphQL steps (after `pip install "wagtail-tailored[graphql]"`)."""
    log("GraphQL steps: apps, settings, HomePage.graphql_fields")
    settings = "mysite/settings/base.py"
    last_tailored_app = f'    "{TAILORED_APPS[-1]}",\n'
    site.insert_after(settings, last_tailored_app, "".join(f'    "{app}",\n' for app in GRAPHQL_APPS))
    site.append(settings, '\nGRAPHENE = {"SCHEMA": "grapple.schema.schema"}\nGRAPPLE = {"APPS": {"home": ""}}\n')
    models = "home/models.py"
    site.insert_after(models, "from wagtail.models import Page\n", "from grapple.models import GraphQLStreamfield\n")
    site.insert_after(models, '    content_panels = Page.content_panels + [FieldPanel("body")]\n',
                      '\n    graphql_fields = [GraphQLStreamfield("body")]\n')
    site.manage("check")
