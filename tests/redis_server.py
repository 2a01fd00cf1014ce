"""A redis-server of a test's own, to pause (SIGSTOP), resume, kill and restart: the session's
shared one must never be harmed. Always reaped by the fixture's finaliser, whatever the test did."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

from tests.conftest import DEMO_SETTINGS, TEST_MODEL_DIR

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """One redis-server on a free port, persisting every write (AOF, fsync always) so a killed
    and restarted server keeps the profiles, as a production Redis with AOF would."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(prefix="tailored-own-redis-")
        self.process: subprocess.Popen | None = None
        self.stopped = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if probe.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        if self.stopped and self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.stopped = False

    def kill(self) -> None:
        self.resume()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_redis(request):
    server = OwnRedis()
    request.addfinalizer(server.close)  # SIGCONT then kill, even when the test failed mid-pause
    server.start()
    return server


def guarded_settings(server: OwnRedis, **overrides) -> dict:
    """PERSONALIZATION for the demo site on `server`, with the guard's knobs."""
    return {
        **DEMO_SETTINGS,
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": server.url,
        "MODEL_DIR": TEST_MODEL_DIR,
        **overrides,
    }
