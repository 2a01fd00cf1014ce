"""Fault bench (issue 14 item 11): pages and events while Redis hangs, dies and comes back.

Starts its own redis-server (append-only, fsync always, so a killed Redis keeps what it
acknowledged), gunicorn with 2 workers and a `tailored_worker`, on a throwaway SQLite database
with the demo content. A bounded loopback load of consenting visitors (electronics fans, so a
personalized homepage is recognisable) and anonymous visitors runs for about a minute:

    baseline  -> Redis paused (SIGSTOP) -> Redis killed (SIGKILL) -> Redis restarted -> recovery

and prints:

    fault_error_rate       non-2xx page responses / all page responses (target 0)
    hung_redis_p99_ratio   page p99 while Redis hangs / page p99 before (target <= 1.5)
    fault_events_lost      events answered 202 but not in the Event table after recovery (target 0)
    resume_s               seconds from the restart until every fan's page is personalized again (target <= 5)

Events refused with 503 while Redis is away are not "accepted": tracker.js keeps and resends
them (as this bench's visitors do, with the same event ids, after recovery).

Every process it starts is reaped at exit, on SIGTERM, and by a watchdog after two minutes.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    DESKTOP_CHROME_UA,
    REDIS_SERVER,
    REPO_ROOT,
    _die_with_parent,
    ensure_repo_on_path,
    free_port,
    make_temp_dir,
    on_exit,
    percentile,
    print_headline,
    progress,
)

SEED = 14
FANS, ANONYMOUS = 12, 12
CLIENT_THREADS = 3
PAGE_PAUSE_S = 0.05  # per client thread between requests: a bounded load, not a flood
EVENTS_EVERY = 3  # a consenting visitor posts an event batch every few of their pages
# The baseline and the hang last as long, so their p99s rest on as many pages and as many of the
# machine's own hiccups; the few pages that paid the one timeout per web worker at the start of
# the hang are counted apart (hung_pages_waited_timeout).
PHASES = (("baseline", 24.0), ("hung", 24.0), ("killed", 6.0), ("restarted", 12.0))
SOCKET_TIMEOUT_S = 0.5  # the default REDIS_SOCKET_TIMEOUT_SECONDS
WATCHDOG_S = 115
ELECTRONICS_HERO = "The latest in electronics, picked for you"


# -- Processes -------------------------------------------------------------------------------------


def _reap(process: subprocess.Popen) -> None:
    """SIGCONT (a paused Redis), then TERM the process group, then KILL it."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGCONT, 0), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if wait:
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def spawn(args: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=_die_with_parent,
    )
    on_exit(lambda: _reap(process))
    return process


class Redis:
    """A redis-server on a fixed port (so it can be restarted there), append-only, fsync always."""

    def __init__(self, workdir: Path):
        self.workdir, self.port = workdir, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = spawn([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                              "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--loglevel", "warning"])
        client = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        for _ in range(250):
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=5)


def scratch_dir() -> Path:
    """On tmpfs when there is one: migrating SQLite otherwise spends most of its time in fsync. A
    killed Redis (a process, not the machine) loses nothing written to the page cache either way."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="tl-bench-faults-", dir=shm))
        on_exit(lambda: shutil.rmtree(path, ignore_errors=True))
        return path
    return make_temp_dir("tl-bench-faults-")


def setup(workdir: Path, redis_url: str) -> dict:
    """Django on a throwaway SQLite file with the demo content; the environment for the children."""
    ensure_repo_on_path()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cms.settings.test", "SQLITE_PATH": str(workdir / "faults.sqlite3"),
           "REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "SQLITE_PATH", "REDIS_URL")})
    os.environ.pop("DATABASE_URL", None)
    template = Path(tempfile.gettempdir()) / f"tailored-bench-faults-{schema_digest()}.sqlite3"
    if template.exists():  # migrated with the demo loaded by an earlier run of this same code
        shutil.copy(template, env["SQLITE_PATH"])
    import django

    django.setup()
    from django.core.management import call_command

    if not template.exists():
        call_command("migrate", verbosity=0, interactive=False)
        call_command("load_demo", stdout=io.StringIO())
        shutil.copy(env["SQLITE_PATH"], template.with_suffix(".partial"))
        template.with_suffix(".partial").rename(template)
    return env


def schema_digest() -> str:
    """What the template database depends on: every migration, the demo fixtures and loader."""
    digest = hashlib.sha256()
    sources = [*REPO_ROOT.glob("*/migrations/*.py"), *REPO_ROOT.glob("*/*/migrations/*.py"),
               *REPO_ROOT.glob("fixtures/demo/**/*"), REPO_ROOT / "cms/management/commands/load_demo.py"]
    for path in sorted(p for p in sources if p.is_file()):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def start_web(env: dict, workdir: Path, log_name: str = "gunicorn.log") -> int:
    """gunicorn with 2 workers on a free port, once it answers (bench/cache.py starts two)."""
    import httpx

    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    spawn([str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
           "--timeout", "30", "cms.wsgi:application"], env, workdir / log_name)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0)
            return port
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


# -- Visitors and load -----------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    phase: str
    kind: str  # "page" or "events"
    status: int
    seconds: float
    fan: bool = False
    personalized: bool = False


@dataclass
class Visitor:
    cookies: dict
    fan: bool
    unsent: list = field(default_factory=list)  # events refused with 503, resent with the next flush (as tracker.js does)


def page_view(rng: random.Random) -> dict:
    return {"type": "page_view", "id": uuid.uuid4().hex, "ts": int(time.time() * 1000), "category": "electronics",
            "product_id": rng.randint(1, 20), "page_type": "product"}


def make_fans(port: int, count: int, rng: random.Random) -> list[Visitor]:
    """Consenting visitors: they accept the banner as tracker.js does (the site issues their
    signed id), then three electronics product views make them fans."""
    import httpx

    fans = []
    for _ in range(count):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"User-Agent": DESKTOP_CHROME_UA}, timeout=10.0) as http:
            http.get("/")
            # As tracker.js posts it: the consent endpoint checks the request is same-site (no CSRF token).
            answer = http.post("/consent/", json={"analytics": True, "personalization": True})
            assert answer.status_code == 200, answer.text
            cookies = {name: http.cookies[name] for name in ("tl_consent", "tl_vid")}
            response = http.post("/api/events", json={"events": [page_view(rng) for _ in range(3)]})
            assert response.status_code == 202, response.text
            assert ELECTRONICS_HERO in http.get("/").text, "a fan should see the electronics hero"
        fans.append(Visitor(cookies, fan=True))
    return fans


class Load:
    def __init__(self, port: int, visitors: list[Visitor]):
        self.port, self.visitors = port, visitors
        self.samples: list[Sample] = []
        self.accepted: set[str] = set()
        self.phase = "baseline"
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def run(self, index: int) -> None:
        import httpx

        rng = random.Random(SEED + index)
        headers = {"User-Agent": DESKTOP_CHROME_UA}
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=headers, timeout=10.0) as http:
            turn = 0
            while not self.stop.is_set():
                visitor = rng.choice(self.visitors)
                self.page(http, visitor)
                turn += 1
                if visitor.fan and turn % EVENTS_EVERY == 0:
                    self.events(http, visitor, rng)
                self.stop.wait(PAGE_PAUSE_S)

    def page(self, http, visitor: Visitor) -> None:
        started = time.monotonic()
        try:
            response = http.get("/", cookies=visitor.cookies)
            status, html = response.status_code, response.text
        except Exception:
            status, html = 0, ""
        http.cookies.clear()  # the next request is another visitor's: only their cookies go
        sample = Sample(time.monotonic(), self.phase, "page", status, time.monotonic() - started, visitor.fan, ELECTRONICS_HERO in html)
        with self._lock:
            self.samples.append(sample)

    def events(self, http, visitor: Visitor, rng: random.Random) -> None:
        # As tracker.js flushes: what is stashed plus the new event, as one batch (at most 100 events)
        # and one request, so a phase without Redis sends no more requests than one with it.
        batch = [*visitor.unsent, page_view(rng)][-100:]
        visitor.unsent = []
        started = time.monotonic()
        try:
            status = http.post("/api/events", json={"events": batch}, cookies=visitor.cookies).status_code
        except Exception:
            status = 0
        http.cookies.clear()
        if status in (202, 207):
            with self._lock:
                self.accepted.update(event["id"] for event in batch)
        elif status in (0, 503):
            visitor.unsent = batch  # kept and resent with the next flush, as tracker.js does
        with self._lock:
            self.samples.append(Sample(time.monotonic(), self.phase, "events", status, time.monotonic() - started))


# -- Figures ---------------------------------------------------------------------------------------


def wait_persisted(accepted: set[str], seconds: float = 20.0) -> set[str]:
    """The accepted event ids not (yet) in the Event table, once the worker has drained."""
    from tailored.models import Event

    deadline = time.monotonic() + seconds
    while True:
        stored = set(Event.objects.filter(event_id__in=list(accepted)).values_list("event_id", flat=True))
        missing = accepted - stored
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.5)


def figures(load: Load, restarted_at: float, lost: int) -> dict:
    pages = [s for s in load.samples if s.kind == "page"]
    p99 = {phase: percentile([s.seconds for s in pages if s.phase == phase], 99) for phase, _ in PHASES}
    fan_pages = sorted((s for s in pages if s.fan and s.at >= restarted_at), key=lambda s: s.at)
    last_plain = max((s.at for s in fan_pages if not s.personalized), default=restarted_at)
    resumed = any(s.personalized and s.at > last_plain for s in fan_pages)
    for phase, _ in PHASES:
        in_phase = [s for s in pages if s.phase == phase]
        events = [s for s in load.samples if s.kind == "events" and s.phase == phase]
        progress(f"{phase:>9}: {len(in_phase)} pages, p50 {percentile([s.seconds for s in in_phase], 50) * 1000:.0f} ms, "
                 f"p99 {p99[phase] * 1000:.0f} ms, non-2xx {sum(not 200 <= s.status < 300 for s in in_phase)}; "
                 f"event posts {len(events)} (503: {sum(s.status == 503 for s in events)})")
    hang_start = min((s.at - s.seconds for s in pages if s.phase == "hung"), default=0.0)
    waited = [(round(s.at - s.seconds - hang_start, 2), round(s.seconds, 3)) for s in pages if s.phase == "hung" and s.seconds >= SOCKET_TIMEOUT_S]
    progress(f"hung pages that took a socket timeout or more (started s after the pause, seconds): {waited}")
    for phase in ("baseline", "hung"):
        start = min((s.at - s.seconds for s in pages if s.phase == phase), default=0.0)
        top = sorted((s for s in pages if s.phase == phase), key=lambda s: s.seconds, reverse=True)[:12]
        progress(f"{phase} slowest pages (started s into the phase, seconds): "
                 f"{[(round(s.at - s.seconds - start, 1), round(s.seconds, 3)) for s in top]}")
    return {
        "fault_error_rate": sum(not 200 <= s.status < 300 for s in pages) / len(pages),
        "hung_redis_p99_ratio": p99["hung"] / p99["baseline"],
        "fault_events_lost": lost,
        "resume_s": (last_plain - restarted_at) if resumed else float("inf"),
        "hung_pages_waited_timeout": len(waited),
        "fault_pages": len(pages),
        "fault_events_accepted": len(load.accepted),
    }


def warm_up(load: Load) -> None:
    """Both gunicorn workers past their first requests (imports, caches), so the baseline is fair."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{load.port}", headers={"User-Agent": DESKTOP_CHROME_UA}, timeout=10.0) as http:
        for visitor in load.visitors * 2:
            load.page(http, visitor)
    load.samples.clear()


def drive(load: Load, server: Redis) -> float:
    """The timeline; returns when Redis was restarted (monotonic)."""
    threads = [threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    restarted_at = 0.0
    for phase, seconds in PHASES:
        if phase == "hung":
            server.signal(signal.SIGSTOP)
        elif phase == "killed":
            server.kill()
        elif phase == "restarted":
            server.start()
            restarted_at = time.monotonic()
        load.phase = phase
        progress(f"phase {phase} for {seconds:.0f} s")
        time.sleep(seconds)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=15)
    return restarted_at


def main() -> None:
    signal.signal(signal.SIGALRM, lambda *_: (print("watchdog: out of time", file=sys.stderr), sys.exit(3)))
    signal.alarm(WATCHDOG_S)
    workdir = scratch_dir()
    server = Redis(workdir)
    server.start()
    progress(f"redis-server (append-only) on 127.0.0.1:{server.port}; loading the demo")
    env = setup(workdir, server.url)
    port = start_web(env, workdir)
    spawn([sys.executable, "manage.py", "tailored_worker"], env, workdir / "worker.log")
    progress(f"gunicorn (2 workers) on 127.0.0.1:{port} and a tailored_worker started")
    import httpx

    rng = random.Random(SEED)
    visitors = make_fans(port, FANS, rng) + [Visitor({}, fan=False) for _ in range(ANONYMOUS)]
    load = Load(port, visitors)
    warm_up(load)
    restarted_at = drive(load, server)
    progress("load stopped; resending what was refused, then waiting for the worker to store everything")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"User-Agent": DESKTOP_CHROME_UA}, timeout=10.0) as http:
        for visitor in visitors:
            if visitor.unsent:
                load.events(http, visitor, rng)
    missing = wait_persisted(load.accepted)
    print_headline(figures(load, restarted_at, len(missing)))
    signal.alarm(0)


if __name__ == "__main__":
    main()
