"""One circuit breaker in front of Redis, for every touch on the request path.

A hung Redis (paused, swapping, a network partition) answers nothing: each call waits its full
socket timeout. A page makes several calls (profile, fragment cache, experiment counters, the
holdout), so without a guard every page waited several timeouts. The guard bounds that:

* The breaker (one per Redis client, so one per process) opens after REDIS_BREAKER_FAILURES
  consecutive connection errors or timeouts. While open, every call fails at once with
  `Unavailable` (a `redis.ConnectionError`, so the callers' existing fallbacks apply).
* After REDIS_BREAKER_COOLDOWN_SECONDS a probe (one PING) runs in a background thread, never in
  a request: no visitor pays for finding out that Redis is still hung. Its success closes the
  breaker; its failure keeps it open for another cool-down.
* A per-request budget: once a request has seen one failure, or spent
  REDIS_REQUEST_BUDGET_SECONDS waiting on Redis, the rest of that request skips Redis even if
  the breaker is still closed (with a threshold above one).

So a hung Redis costs a page at most one timeout, and the pages after it none. Only connection
errors and timeouts count: a script error is a bug, not an outage, and passes through.

The client is `GuardedRedis`, a `redis.Redis` whose commands and pipelines pass the guard, so
code that takes `store.client` (fragments, counters, weather cache) is guarded without knowing.

Redis Cluster (issue 19): a REDIS_URL `redis+cluster://host:port[,host:port...]` (or any URL with
REDIS_CLUSTER = True) gives `GuardedRedisCluster`, redis-py's RedisCluster behind the same guard.
Its pipelines are split per node by redis-py; they also reload a Lua script a node does not know
(a promoted replica, a restarted node) and run again only the calls that failed for that, as
redis-py's own pipelines do on a single Redis.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from django.core.signals import request_finished, request_started
from django.dispatch import receiver
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.retry import Retry

from tailored.insights import metrics

logger = logging.getLogger(__name__)

# What an outage looks like to redis-py (BusyLoadingError, a Redis still loading its data after a
# restart, is a ConnectionError too). On Redis Cluster also: the cluster down or a slot unserved
# (a master died and its replica is not promoted yet), TRYAGAIN while slots move, and no node
# reachable. None of these can come from a single Redis.
UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.RedisClusterUnreachableError,
)
# A Redis that answers but refuses writes: out of memory under `noeviction`, or a replica (a
# failover in progress). Callers answer them as an outage (503, erasure queued), but they do not
# open the breaker: reads still work, and pages keep their personalization.
WRITES_REFUSED = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)
OUTAGE = UNREACHABLE + WRITES_REFUSED


class Unavailable(redis.exceptions.ConnectionError):
    """Redis was not asked: the breaker is open or this request already gave up on it."""


@dataclass(slots=True)
class RequestBudget:
    """What one request has spent on Redis so far."""

    seconds: float
    spent: float = 0.0
    failed: bool = False

    def exhausted(self) -> bool:
        return self.failed or self.spent >= self.seconds


_budget: contextvars.ContextVar[RequestBudget | None] = contextvars.ContextVar("tailored_redis_budget", default=None)


@receiver(request_started)
def _start_request(**kwargs: Any) -> None:
    from tailored import conf  # conf imports no module of ours; kept lazy for import order

    _budget.set(RequestBudget(float(conf.get("REDIS_REQUEST_BUDGET_SECONDS"))))


@receiver(request_finished)
def _finish_request(**kwargs: Any) -> None:
    _budget.set(None)


@contextmanager
def request_budget(seconds: float) -> Iterator[RequestBudget]:
    """A request's budget outside Django's request signals (a worker turn, a test)."""
    token = _budget.set(RequestBudget(seconds))
    try:
        yield _budget.get()
    finally:
        _budget.reset(token)


class RedisBreaker:
    """closed -> (failures) -> open -> (cool-down, background PING) -> closed or open again."""

    def __init__(self, failures: int = 1, cooldown_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.failure_threshold = max(int(failures), 1)
        self.cooldown_seconds = float(cooldown_seconds)
        self.clock = clock
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False
        self.recoveries = 0  # how often a probe closed it: callers catch up on what waited
        self._lock = threading.Lock()

    def allow(self, probe: Callable[[], None]) -> bool:
        """Whether a call may go out now; starts the background probe when one is due."""
        with self._lock:
            if self.state == "closed":
                return True
            if self.probing or self.clock() - self.opened_at < self.cooldown_seconds:
                return False
            self.probing = True
        threading.Thread(target=self._probe, args=(probe,), name="tailored-redis-probe", daemon=True).start()
        return False

    def _probe(self, probe: Callable[[], None]) -> None:
        try:
            probe()
        except Exception as error:
            with self._lock:
                self.probing, self.opened_at = False, self.clock()
            logger.info("Redis still unavailable (%s); next probe in %.1f s", error, self.cooldown_seconds)
            return
        with self._lock:
            self.probing, self.state, self.failures = False, "closed", 0
            self.recoveries += 1
        logger.warning("Redis is back: the circuit breaker closed")

    def record_success(self) -> None:
        if self.failures:  # the common case takes no lock
            with self._lock:
                self.failures = 0

    def record_failure(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self.state == "closed" and self.failures >= self.failure_threshold:
                self.state, self.opened_at = "open", self.clock()
                logger.warning("Redis unavailable (%s): skipping it for %.1f s", error, self.cooldown_seconds)


class RedisGuard:
    """The breaker plus the current request's budget, around one client's calls."""

    def __init__(self, failures: int = 1, cooldown_seconds: float = 2.0):
        self.breaker = RedisBreaker(failures, cooldown_seconds)
        self.probe: Callable[[], None] = lambda: None

    @property
    def available(self) -> bool:
        """Whether Redis is thought healthy (for callers choosing a path, e.g. erasure now or queued)."""
        budget = _budget.get()
        return self.breaker.state == "closed" and not (budget and budget.exhausted())

    @contextmanager
    def call(self) -> Iterator[None]:
        budget = _budget.get()
        if budget is not None and budget.exhausted():
            raise Unavailable("Redis skipped for the rest of this request")
        if not self.breaker.allow(self.probe):
            raise Unavailable("Redis skipped: the circuit breaker is open")
        started = time.monotonic()
        try:
            yield
        except UNREACHABLE as error:
            if budget is not None:
                budget.failed = True
            self.breaker.record_failure(error)
            raise
        else:
            self.breaker.record_success()
        finally:
            spent = time.monotonic() - started
            metrics.observe_redis(spent)  # /metrics (issue 17)
            if budget is not None:
                budget.spent += spent


class GuardedRedis(redis.Redis):
    """A redis.Redis whose every command and pipeline passes its `guard`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.guard = RedisGuard()
        # The probe bypasses the guard (it is how the guard learns that Redis is back).
        self.guard.probe = lambda: redis.Redis.execute_command(self, "PING")

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with self.guard.call():
            return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> GuardedPipeline:
        pipe = GuardedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.guard = self.guard
        return pipe


class GuardedPipeline(Pipeline):
    guard: RedisGuard

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if not self.command_stack:
            return []
        with self.guard.call():
            return super().execute(raise_on_error)


CLUSTER_SCHEME = "redis+cluster://"


def is_cluster(url: str | None, settings: Mapping[str, Any] | None = None) -> bool:
    """Whether REDIS_URL names a Redis Cluster (its scheme, or REDIS_CLUSTER = True)."""
    return bool(url) and (url.startswith(CLUSTER_SCHEME) or bool((settings or {}).get("REDIS_CLUSTER")))


def cluster_from_url(url: str, client_class: type[RedisCluster] = RedisCluster, **kwargs: Any) -> RedisCluster:
    """A RedisCluster from `redis+cluster://[user:password@]host:port[,host:port...]` (any
    answering node is enough to discover the others), or from a plain redis:// or rediss:// URL
    naming one node (REDIS_CLUSTER = True; TLS and URL options go this way)."""
    if not url.startswith(CLUSTER_SCHEME):
        return client_class.from_url(url, **kwargs)
    from urllib.parse import unquote

    location = url[len(CLUSTER_SCHEME):].split("/", 1)[0].split("?", 1)[0]
    credentials, _, hosts = location.rpartition("@")
    if credentials:
        username, _, password = credentials.partition(":")
        kwargs.setdefault("username", unquote(username) or None)
        kwargs.setdefault("password", unquote(password) or None)
    nodes = []
    for host_port in filter(None, hosts.split(",")):
        host, _, port = host_port.rpartition(":")
        nodes.append(ClusterNode(host or "127.0.0.1", int(port or 6379)))
    if not nodes:
        raise ValueError(f"no host:port in the cluster URL {url!r}")
    return client_class(startup_nodes=nodes, **kwargs)


def connect(url: str, settings: Mapping[str, Any]) -> GuardedRedis | GuardedRedisCluster:
    """The web processes' client: short timeouts (a page must render, with fallbacks, when Redis
    is slow or down) and the guard configured from PERSONALIZATION."""
    timeout = float(settings["REDIS_SOCKET_TIMEOUT_SECONDS"])
    options = {"decode_responses": True, "socket_timeout": timeout, "socket_connect_timeout": timeout}
    if is_cluster(url, settings):
        # One retry (after a topology refresh: a slot that moved, a promoted replica), not redis-py's
        # default with backoff: a page waits at most two timeouts, and the guard then opens.
        client = cluster_from_url(url, GuardedRedisCluster, retry=Retry(NoBackoff(), 1), **options)
    else:
        client = GuardedRedis.from_url(url, **options)
    client.guard.breaker = RedisBreaker(settings["REDIS_BREAKER_FAILURES"], settings["REDIS_BREAKER_COOLDOWN_SECONDS"])
    return client


# -- Redis Cluster ----------------------------------------------------------------------------------


class ClusterClient(RedisCluster):
    """RedisCluster whose pipelines recover from NOSCRIPT (ScriptPipeline); for the workers."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.script_sources: dict[str, str] = {}  # sha -> source, to load where a node lacks it
        super().__init__(*args, **kwargs)

    def register_script(self, script: str) -> Any:
        registered = super().register_script(script)
        self.script_sources[registered.sha] = script
        return registered

    def script_load(self, script: str) -> str:
        sha = super().script_load(script)  # on every primary
        self.script_sources[sha] = script
        return sha

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ScriptPipeline:
        pipe = super().pipeline(transaction, shard_hint)
        # The subclass adds behaviour only (no state of redis-py's own): swapping the class keeps
        # ClusterPipeline's constructor, whose arguments change between redis-py versions, its own.
        pipe.__class__ = self.pipeline_class
        pipe.client = self
        return pipe

    pipeline_class: type = None  # set below, once the pipeline classes exist


class ScriptPipeline(ClusterPipeline):
    """A cluster pipeline that loads a script a node does not know and runs those calls again.
    redis-py's cluster pipelines leave NOSCRIPT to the caller (a single Redis's pipeline loads its
    scripts first); a call that got NOSCRIPT ran nothing, so running it again is safe."""

    client: ClusterClient

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        queued = [(command.args, command.options) for command in self._execution_strategy.command_queue]
        results = super().execute(raise_on_error=False)
        missing = [i for i, result in enumerate(results) if isinstance(result, redis.exceptions.NoScriptError)]
        if missing:
            for sha in {str(queued[i][0][1]) for i in missing}:
                if sha in self.client.script_sources:
                    RedisCluster.script_load(self.client, self.client.script_sources[sha])
            again = RedisCluster.pipeline(self.client)
            for i in missing:
                again.execute_command(*queued[i][0], **queued[i][1])
            for i, result in zip(missing, again.execute(raise_on_error=False), strict=True):
                results[i] = result
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results


class GuardedRedisCluster(ClusterClient):
    """A RedisCluster whose every command and pipeline passes its `guard` (the web's client)."""

    def __init__(self, *args: Any, **kwargs: Any):
        # Before RedisCluster's constructor, which already sends commands (COMMAND, CLUSTER SLOTS).
        self.guard = RedisGuard()
        self.guard.probe = lambda: RedisCluster.execute_command(self, "PING")
        super().__init__(*args, **kwargs)

    def execute_command(self, *args: Any, **options: Any) -> Any:
        with self.guard.call():
            return super().execute_command(*args, **options)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> GuardedClusterPipeline:
        pipe = super().pipeline(transaction, shard_hint)
        pipe.guard = self.guard
        return pipe


class GuardedClusterPipeline(ScriptPipeline):
    guard: RedisGuard

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if not self._execution_strategy.command_queue:
            return []
        with self.guard.call():
            return super().execute(raise_on_error)


ClusterClient.pipeline_class = ScriptPipeline
GuardedRedisCluster.pipeline_class = GuardedClusterPipeline


def queued_commands(pipe: Any) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """A pipeline's queued commands as (args, options), for a single Redis's or a cluster's."""
    if isinstance(pipe, ClusterPipeline):
        return [(command.args, command.options) for command in pipe._execution_strategy.command_queue]
    return pipe.command_stack


def mget(client: Any, keys: list[str]) -> list[Any]:
    """MGET on any client: split by slot on a cluster (keys of several slots), one MGET otherwise."""
    if isinstance(client, RedisCluster):
        return client.mget_nonatomic(keys)
    return client.mget(keys)


def available(client: Any) -> bool:
    """Whether `client` (any store's client, or None for the memory store) may be used now."""
    guard = getattr(client, "guard", None)
    return guard is None or guard.available
