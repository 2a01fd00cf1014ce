"""Shared helpers for the bench scripts (not a benchmark itself; running it does nothing).

Each script starts its own throwaway redis-server on a free loopback port, points Django at a
throwaway SQLite file with the Redis profile store, migrates, measures, and tears it all down.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = "/usr/bin/redis-server"

# A current desktop Chrome on Windows: parsed as "desktop" by tailored.context.device.
DESKTOP_CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
CONSENT_COOKIE_VALUE = "analytics.personalization"

_started = time.perf_counter()


def ensure_repo_on_path() -> None:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


# Running `python bench/NAME.py` puts bench/ first on sys.path, where bench/graphql.py would
# shadow graphql-core for every later `import graphql`. Once _common is imported, bench/ leaves.
BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH_DIR]


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _started:6.1f}s] {message}", flush=True)


_cleanups: list[Callable[[], None]] = []


def _run_cleanups() -> None:
    while _cleanups:
        try:
            _cleanups.pop()()
        except Exception as error:  # keep cleaning up the rest
            print(f"clean-up failed: {error}", file=sys.stderr)


def on_exit(callback: Callable[[], None]) -> None:
    """Run callback at exit, on SIGTERM too (newest first)."""
    if not _cleanups:
        atexit.register(_run_cleanups)
        signal.signal(signal.SIGTERM, _exit_on_signal)
    _cleanups.append(callback)


def _exit_on_signal(signum, frame) -> None:
    # Clean up here and leave at once: an exception raised from a signal handler can be
    # swallowed (e.g. inside a finalizer) and let the benchmark run on.
    _run_cleanups()
    os._exit(128 + signum)


def make_temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    on_exit(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


def _die_with_parent() -> None:
    """In the redis-server child: get SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server without persistence, killed at exit."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, attempts: int = 5) -> RedisServer:
        on_exit(self.stop)
        for _ in range(attempts):
            port = free_port()
            if port == 6379:  # never share the system's default instance
                continue
            options = {
                "port": str(port),
                "bind": "127.0.0.1",
                "save": "",
                "appendonly": "no",
                "dir": str(self.workdir),
                "daemonize": "no",
                "loglevel": "warning",
            }
            args = [REDIS_SERVER]
            for name, value in options.items():
                args += [f"--{name}", value]
            process = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            if self._wait_ready(process, port):
                self.process, self.port = process, port
                return self
            _kill(process)  # most likely lost the port to someone else: try another one
        raise RuntimeError("could not start redis-server on a free loopback port")

    @staticmethod
    def _wait_ready(process: subprocess.Popen, port: int, timeout: float = 5.0) -> bool:
        import redis

        client = redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=0.2, socket_connect_timeout=0.2
        )
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    return False
                try:
                    # Ours, not some other server that answers on the same port.
                    return client.info("server")["process_id"] == process.pid
                except redis.RedisError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            _kill(self.process)
            self.process = None


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def setup_django(prefix: str) -> tuple[RedisServer, Path]:
    """Start Redis, configure Django (test settings + Redis profile store + temp SQLite), migrate."""
    ensure_repo_on_path()
    workdir = make_temp_dir(prefix)
    progress("starting redis-server")
    server = RedisServer(workdir).start()
    progress(
        f"redis-server ready on 127.0.0.1:{server.port}; redis-py reply parser: {redis_parser()}"
    )

    os.environ.pop("DATABASE_URL", None)  # always the throwaway SQLite file, never a real database
    os.environ["DJANGO_SETTINGS_MODULE"] = "cms.settings.test"
    os.environ["SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ["REDIS_URL"] = server.url  # base.py picks the Redis store from this

    import django
    from django.conf import settings

    settings.PERSONALIZATION = {
        "PRODUCT_MODEL": "cms.ProductPage",  # the demo's products, as its settings name them
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": server.url,
    }
    django.setup()

    from django.core.management import call_command

    progress("migrating a throwaway SQLite database")
    call_command("migrate", verbosity=0, interactive=False)

    from tailored import conf
    from tailored.profiles.redis import RedisProfileStore

    store = conf.get_profile_store()
    assert isinstance(store, RedisProfileStore), store
    assert store.client.connection_pool.connection_kwargs["port"] == server.port
    assert settings.DATABASES["default"]["NAME"] == os.environ["SQLITE_PATH"]
    return server, workdir


def redis_parser() -> str:
    from redis.utils import HIREDIS_AVAILABLE

    return "hiredis" if HIREDIS_AVAILABLE else "python"


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def run_timed(
    fn: Callable[[Any], Any],
    iterations: int,
    prepare: Callable[[], Any] | None = None,
    check: Callable[[Any], None] | None = None,
) -> list[float]:
    """Call fn(prepare()) `iterations` times; returns the durations in milliseconds.

    Only fn is timed: building its argument (prepare) and verifying its result (check) are not.
    """
    samples = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        arg = prepare() if prepare is not None else None
        start = clock()
        result = fn(arg)
        samples.append((clock() - start) / 1e6)
        if check is not None:
            check(result)
    return samples


@dataclass(frozen=True)
class Summary:
    name: str
    n: int
    median_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, name: str, samples: Sequence[float]) -> Summary:
        return cls(
            name=name,
            n=len(samples),
            median_ms=statistics.median(samples),
            p99_ms=percentile(samples, 99),
            mean_ms=statistics.fmean(samples),
            min_ms=min(samples),
        )

    def line(self) -> str:
        return (
            f"  {self.name:<28} n={self.n:<6} median={self.median_ms:8.3f} ms  "
            f"p99={self.p99_ms:8.3f} ms  mean={self.mean_ms:8.3f} ms  min={self.min_ms:8.3f} ms"
        )


def quiet_gc() -> None:
    """Collect now so a pending collection is not charged to the first timed call."""
    gc.collect()


def print_headline(figures: dict[str, float | int | str]) -> None:
    print()
    for key, value in figures.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}", flush=True)


def signed_visitor_id(visitor_id: str) -> str:
    """The `tl_vid` cookie value the site itself sets for this id (by `services.set_visitor_cookie`,
    so with the salt the installed Django signs with now, not a legacy one it only falls back
    to): a bench's visitors are returning visitors."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from tailored import conf, services

    response = HttpResponse()
    services.set_visitor_cookie(RequestFactory().get("/"), response, visitor_id)
    return response.cookies[conf.get("VISITOR_COOKIE")].value


def make_electronics_fan(visitor_id: str) -> int:
    """Record 3 electronics product views for a consenting visitor: the demo's electronics fan."""
    from django.test import RequestFactory

    from tailored import services
    from tailored.core.types import Event

    factory = RequestFactory(HTTP_USER_AGENT=DESKTOP_CHROME_UA)
    factory.cookies["tl_consent"] = CONSENT_COOKIE_VALUE
    factory.cookies["tl_vid"] = signed_visitor_id(visitor_id)
    visitor = services.resolve_visitor(factory.get("/electronics/"))
    assert visitor.id == visitor_id and visitor.consent.allows_profile, visitor
    now = time.time()
    events = [
        Event(
            id=uuid.uuid4().hex,
            type="page_view",
            ts=now - 60 * (3 - i),
            category="electronics",
            item=f"electronics-{i}",
            url="/electronics/",
        )
        for i in range(3)
    ]
    return len(services.record_events(visitor, events).stored)


def interleaved_rounds(
    modes: Sequence[str],
    run_mode: Callable[[str, int], list[float]],
    rounds: int,
    per_round: int,
    report_every: int,
    ratio: tuple[str, str],
) -> dict[str, list[float]]:
    """Time every mode in short interleaved rounds (order reversed every other round) so drift
    hits all modes alike; prints the median ratio of `ratio` every `report_every` rounds."""
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    recent: dict[str, list[float]] = {mode: [] for mode in modes}
    for round_no in range(rounds):
        for mode in modes if round_no % 2 == 0 else list(reversed(modes)):
            timed = run_mode(mode, per_round)
            samples[mode].extend(timed)
            recent[mode].extend(timed)
        if (round_no + 1) % report_every == 0:
            top, bottom = (statistics.median(recent[mode]) for mode in ratio)
            progress(
                f"rounds {round_no + 2 - report_every:2d}-{round_no + 1:2d}/{rounds}: median "
                f"{ratio[0]} {top:.3f} ms, {ratio[1]} {bottom:.3f} ms, ratio {top / bottom:.3f}"
            )
            recent = {mode: [] for mode in modes}
    return samples
