"""/metrics in the Prometheus text format (issue 17 item 6), with the `metrics` extra
(prometheus-client). Off unless METRICS_ENABLED; then served only to a request bearing
METRICS_TOKEN (`Authorization: Bearer <token>`) or coming from METRICS_ALLOWED_IPS (addresses or
networks, e.g. "10.0.0.0/8").

Two kinds of figures:
* measured in each web process as requests run (cheap: a histogram observation is about a
  microsecond): resolve_visitor and segment evaluation times, Redis call times, events ingested
  and rejected by reason. Under gunicorn set PROMETHEUS_MULTIPROC_DIR (prometheus-client's
  multiprocess mode) so a scrape sees every worker process, not just the one answering;
* read when scraped, from Redis and the database: the circuit breaker's state, the stream's length,
  pending entries and lag, dead letters, the worker's last flush, model versions, and the
  impression, click and conversion totals per block and variant (the Insights rows).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from tailored import conf

try:  # the `metrics` extra
    import prometheus_client as prom
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
except ImportError:  # pragma: no cover - exercised by installs without the extra
    prom = None

logger = logging.getLogger(__name__)

FLUSH_KEY = "tl:v1:{ins}:flush-stats"  # the worker's last flush: seconds, at, rows
TIMES = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

if prom is not None:
    RESOLVE = prom.Histogram("tailored_resolve_visitor_seconds", "services.resolve_visitor, per request that resolves a visitor", buckets=TIMES)
    SEGMENTS = prom.Histogram("tailored_segment_evaluation_seconds", "Evaluating every enabled segment for one visitor", buckets=TIMES)
    REDIS = prom.Histogram("tailored_redis_call_seconds", "One guarded Redis call or pipeline on the request path", buckets=TIMES)
    INGESTED = prom.Counter("tailored_events_ingested", "Events accepted by the events API")
    REJECTED = prom.Counter("tailored_events_rejected", "Events or batches the events API refused, by reason", ["reason"])


def _on() -> bool:
    return prom is not None and bool(conf.get("METRICS_ENABLED"))


def observe_resolve(total: float, segments: float) -> None:
    """Called by services.resolve_visitor with its own and the segments' time (seconds)."""
    if _on():
        RESOLVE.observe(total)
        SEGMENTS.observe(segments)


def observe_redis(seconds: float) -> None:
    if _on():
        REDIS.observe(seconds)


def count_ingested(accepted: int, rejections: Sequence[Any] = ()) -> None:
    """Accepted events, and each rejected one by a coarse reason (a bounded label set)."""
    if not _on():
        return
    INGESTED.inc(accepted)
    for rejection in rejections:
        REJECTED.labels(reason_of(rejection.field, rejection.reason)).inc()


def count_refused(code: str) -> None:
    """A batch refused whole: its error code (body_too_large, rate_limited, ...)."""
    if _on():
        REJECTED.labels(code[:40]).inc()


def reason_of(field: str | None, reason: str) -> str:
    if field == "type":
        return "unknown_type"
    if reason.startswith("unexpected field"):
        return "unexpected_field"
    if field == "ts":
        return "too_old" if "old" in reason else "in_future" if "future" in reason else "invalid_ts"
    return "missing_field" if reason == "this field is required" else "invalid_value"


def note_flush(client: Any, seconds: float, rows: int) -> None:
    """The worker records its last insight flush for the scrape (a web process) to read."""
    try:
        client.hset(FLUSH_KEY, mapping={"seconds": f"{seconds:.6f}", "at": f"{time.time():.3f}", "rows": rows})
    except Exception:  # a statistic: never a reason to fail the flush
        logger.debug("flush statistics not recorded", exc_info=True)


class StateCollector:
    """Figures read at scrape time from Redis and the database."""

    def collect(self) -> Iterator[Any]:
        yield from self._redis()
        yield from self._models()
        yield from self._insights()

    def _redis(self) -> Iterator[Any]:
        from tailored.events.stream import CONSUMER_GROUP, DEAD_LETTER_KEY, appended_at, stream_keys

        client = getattr(conf.get_profile_store(), "client", None)
        if client is None:
            return
        guard = getattr(client, "guard", None)
        breaker = GaugeMetricFamily("tailored_redis_breaker_open", "1 while the request path's Redis circuit breaker is open or probing")
        breaker.add_metric([], 0 if guard is None or guard.breaker.state == "closed" else 1)
        yield breaker
        streams = stream_keys(int(conf.get("EVENT_STREAM_SHARDS")))  # every shard (issue 19)
        try:
            pipe = client.pipeline(transaction=False)
            for stream in streams:
                pipe.xlen(stream)
                pipe.xrange(stream, count=1)
            pipe.xlen(DEAD_LETTER_KEY)
            pipe.hgetall(FLUSH_KEY)
            *per_shard, dead, flush = pipe.execute()
        except Exception:  # Redis down: the breaker gauge says so; the rest is unknown
            return
        length = sum(per_shard[0::2])
        firsts = [reply[0][0] for reply in per_shard[1::2] if reply]
        pending = 0
        for stream in streams:
            with contextlib.suppress(Exception):  # no worker has created the group yet
                pending += client.xpending(stream, CONSUMER_GROUP)["pending"]
        lag = time.time() - min(map(appended_at, firsts)) if firsts else 0.0
        for name, help_text, value in (
            ("tailored_stream_length", "Entries in the event stream not yet stored by a worker", length),
            ("tailored_stream_pending", "Entries read by a worker and not yet acknowledged", pending),
            ("tailored_stream_lag_seconds", "Age of the oldest entry still in the stream", max(lag, 0.0)),
            ("tailored_dead_letters", "Events in the dead-letter stream", dead),
            ("tailored_worker_flush_seconds", "Duration of the worker's last insight flush", float(flush.get("seconds", 0))),
            ("tailored_worker_flush_timestamp_seconds", "When the worker last flushed insight counters", float(flush.get("at", 0))),
        ):
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], value)
            yield gauge

    def _models(self) -> Iterator[Any]:
        from tailored.ml import registry

        info = GaugeMetricFamily("tailored_model_info", "The current version of each trained model (value 1)", labels=["model", "version"])
        root = registry.get_registry().root
        for folder in sorted(root.iterdir()) if root.is_dir() else ():
            version = registry.get_registry().current_version(folder.name)
            if version:
                info.add_metric([folder.name, version], 1)
        yield info

    def _insights(self) -> Iterator[Any]:
        from django.db.models import Sum

        from tailored.models import InsightDay, TrafficHour

        families = {
            name: CounterMetricFamily(f"tailored_block_{name}", f"{name.capitalize()} per block and variant (Insights rows, every visitor)", labels=["page", "block", "variant"])
            for name in ("impressions", "clicks", "conversions")
        }
        rows = (InsightDay.objects.filter(segment="").values("page_id", "block", "variant")
                .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"), conversions=Sum("conversions")).order_by())
        for row in rows:
            for name, family in families.items():
                family.add_metric([str(row["page_id"]), row["block"], row["variant"]], row[name] or 0)
        yield from families.values()
        processed = CounterMetricFamily("tailored_worker_events", "Events the workers processed (flushed counts)")
        processed.add_metric([], TrafficHour.objects.aggregate(n=Sum("events"))["n"] or 0)
        yield processed


def allowed(request: HttpRequest) -> bool:
    """A request bearing the token, or from an allowed address or network."""
    token = conf.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header == f"Bearer {token}":
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in conf.get("METRICS_ALLOWED_IPS"))


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not conf.get("METRICS_ENABLED"):
        return JsonResponse({"error": "not_found", "message": "metrics are off (METRICS_ENABLED)"}, status=404)
    if prom is None:
        return JsonResponse({"error": "unavailable", "message": "install the metrics extra: pip install 'wagtail-tailored[metrics]'"}, status=503)
    if not allowed(request):
        return JsonResponse({"error": "forbidden", "message": "a METRICS_TOKEN bearer token or an address in METRICS_ALLOWED_IPS is required"}, status=403)
    return HttpResponse(prom.generate_latest(registry()), content_type=prom.CONTENT_TYPE_LATEST)


def registry() -> Any:
    """Every process's measured figures (multiprocess mode) or this one's, plus the state."""
    scrape = prom.CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(scrape)
    else:
        for metric in (RESOLVE, SEGMENTS, REDIS, INGESTED, REJECTED):
            scrape.register(metric)
    scrape.register(StateCollector())
    return scrape
