"""A throwaway Redis Cluster on loopback: N masters (and replicas), for the cluster tests and
bench/cluster.py. No persistence; every process is killed and the directory removed by `close`,
which callers must reach whatever happens (a pytest finaliser, bench's on_exit)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
# How long a master may be unreachable before its replica is promoted (failover tests): short, so
# a test's failover window is a few seconds, not redis.conf's 15.
NODE_TIMEOUT_MS = 1500


def _die_with_parent() -> None:
    """In the redis-server child: SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 < 65536 and port != 6379 and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """`masters` masters with `replicas` replicas each, created with `redis-cli --cluster create`."""

    def __init__(self, masters: int = 3, replicas: int = 0, prefix: str = "tailored-cluster-"):
        self.masters, self.replicas = masters, replicas
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def ports(self) -> list[int]:
        return list(self.processes)

    @property
    def url(self) -> str:
        """The REDIS_URL naming this cluster (every node: any answering one is enough to start)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> LocalCluster:
        for _ in range(self.masters * (1 + self.replicas)):
            self._start_node()
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        )
        self.wait_ok()
        return self

    def _start_node(self) -> None:
        port = free_cluster_port()
        node_dir = self.dir / str(port)
        node_dir.mkdir()
        args = [
            REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
            "--loglevel", "warning", "--logfile", str(node_dir / "redis.log"),
        ]
        process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.processes[port] = process
        self._wait_ping(port)

    @staticmethod
    def _wait_ping(port: int, timeout: float = 10.0) -> None:
        client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server on port {port} did not start")

    def info(self, port: int) -> dict[str, str]:
        client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
        try:
            text = client.execute_command("CLUSTER", "INFO")
        finally:
            client.close()
        if isinstance(text, dict):
            return {str(k): str(v) for k, v in text.items()}
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def wait_ok(self, timeout: float = 30.0, ports: list[int] | None = None) -> None:
        """Until every (live) node says cluster_state:ok with every slot served."""
        deadline = time.monotonic() + timeout
        ports = ports or [port for port, process in self.processes.items() if process.poll() is None]
        while time.monotonic() < deadline:
            try:
                states = [self.info(port) for port in ports]
                if all(s.get("cluster_state") == "ok" and s.get("cluster_slots_ok") == "16384" for s in states):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def wait_replicas(self, timeout: float = 30.0) -> None:
        """Until every replica has its master's data (link up, initial sync done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            linked = 0
            for port in self.ports:
                client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
                try:
                    info = client.info("replication")
                finally:
                    client.close()
                if info["role"] == "slave" and info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"):
                    linked += 1
            if linked == self.masters * self.replicas:
                return
            time.sleep(0.1)
        raise RuntimeError("the replicas did not sync")

    def master_of(self, key: str) -> int:
        """The port of the master serving `key`'s slot."""
        live = next(port for port, process in self.processes.items() if process.poll() is None)
        client = redis.Redis(port=live, decode_responses=True, socket_timeout=2)
        try:
            slot = client.execute_command("CLUSTER", "KEYSLOT", key)
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        finally:
            client.close()
        raise LookupError(key)

    def kill(self, port: int) -> None:
        process = self.processes[port]
        if process.poll() is None:
            process.kill()
            process.wait(10)

    def flush(self) -> None:
        """Empty every master (between tests)."""
        for port, process in self.processes.items():
            if process.poll() is not None:
                continue
            client = redis.Redis(port=port, socket_timeout=2)
            try:
                if client.info("replication")["role"] == "master":
                    client.flushall()
            finally:
                client.close()

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
