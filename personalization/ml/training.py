"""Training orchestration for `manage.py tailored_train` (issue 7, item 6), kept here so tests
can run it without the command.

  1. load the persisted events of the training window (tailored.models.Event);
  2. build profiles by replaying each visitor's events into a private MemoryProfileStore (the
     same counters the live stores apply), as of now and as of weekly cutoffs;
  3. personas: KMeans on the profiles as of now; labels synced to PersonaLabel; published;
  4. propensity: features as of each cutoff, labels from the 7 days after it; published;
  5. recommender: interactions (thumbs up/down included) from the same events; published;
  6. score the live profiles of the configured store: persona and scores, set_model_outputs.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from tailored import conf
from tailored.core.types import Event, Profile, Snapshot
from tailored.models import Event as StoredEvent
from tailored.models import PersonaLabel
from tailored.profiles.memory import MemoryProfileStore
from tailored.progress import Progress

from . import registry
from .features import FEATURE_WINDOWS, PERSONA_FEATURES, feature_matrix, feature_names, select
from .personas import NotEnoughData, PersonaModel, fit_personas
from .propensity import TARGETS, PropensityModel, fit_propensity, format_metrics
from .scoring import PERSONAS, PROPENSITY, model_outputs

logger = logging.getLogger(__name__)

DAY = 86400.0
HORIZON_DAYS = 7  # churn: no event within this many days; purchase intent: a purchase within them
MAX_CUTOFFS = 3
MIN_EVENTS = 500
STEPS = ("personas", "propensity", "recommender")
RECOMMENDER = "recommender"  # registry names (PERSONAS, PROPENSITY: .scoring)
Say = Callable[[str], None]


@dataclass
class TrainingReport:
    events: int = 0
    visitors: int = 0
    personas: PersonaModel | None = None
    propensity: dict[str, PropensityModel] = field(default_factory=dict)
    recommender: Any = None
    versions: dict[str, str] = field(default_factory=dict)
    scored: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # the process's peak after each step
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class History:
    """Every training visitor's events, time-ordered, plus the raw rows for the recommender."""

    events: Mapping[str, Sequence[Event]]
    rows: Sequence[tuple[str, str, str | None, float, Mapping[str, Any]]]
    start: float
    end: float


def train(since_days: int = 28, seed: int = 7, only: str | None = None, now: float | None = None, say: Say = print) -> TrainingReport:
    """Run the steps (all, or `only` one of STEPS); raises NotEnoughData with what is needed."""
    now = time.time() if now is None else now
    report = TrainingReport()
    with _timed(report, "load", say):
        history = load_history(now - since_days * DAY, now)
        report.events, report.visitors = len(history.rows), len(history.events)
        say(f"loaded {report.events} events of {report.visitors} visitors ({since_days} days)")
    if report.events < MIN_EVENTS:
        raise NotEnoughData(
            f"training needs at least {MIN_EVENTS} stored events in the last {since_days} days; found {report.events}. "
            "Collect more, widen --since, or generate a demo history with --synthetic 2000."
        )
    steps = [only] if only else list(STEPS)
    if "personas" in steps:
        with _timed(report, "personas", say):
            report.personas, report.versions[PERSONAS] = train_personas(history, now, seed, say)
    if "propensity" in steps:
        with _timed(report, "propensity", say):
            report.propensity, report.versions[PROPENSITY] = train_propensity(history, now, seed, say)
    if "recommender" in steps:
        with _timed(report, "recommender", say):
            _train_recommender(history, now, seed, say, report)
    if report.personas is not None or report.propensity:
        with _timed(report, "score", say):
            report.scored = score_live_profiles(report.personas, report.propensity, now, say)
    return report


class _timed:
    def __init__(self, report: TrainingReport, step: str, say: Say):
        self.report, self.step, self.say = report, step, say

    def __enter__(self) -> None:
        self.say(f"[{self.step}]")
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.report.seconds[self.step] = round(time.perf_counter() - self.started, 2)
        self.report.peak_rss_mb[self.step] = peak_rss_mb()
        if exc[0] is None:
            self.say(f"  done in {self.report.seconds[self.step]:.1f}s, process peak RSS {self.report.peak_rss_mb[self.step]:.0f} MB")


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (issue 22 item 7: training reports memory per
    step; a step that raised it shows the new peak; the recommender's components also report
    their own numpy peak in its `fit_cost`). 0 where the platform cannot say."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def load_history(start: float, end: float) -> History:
    """The stored events with start <= ts <= end, grouped by visitor in time order."""
    rows = (
        StoredEvent.objects.filter(ts__gte=_datetime(start), ts__lte=_datetime(end))
        .order_by("visitor_id", "ts", "pk")
        .values_list("visitor_id", "event_id", "type", "ts", "category", "item", "url", "attrs")
    )
    events: dict[str, list[Event]] = defaultdict(list)
    raw = []
    for visitor, event_id, kind, ts, category, item, url, attrs in rows.iterator(chunk_size=5000):
        stamp = ts.timestamp()
        attrs = attrs if isinstance(attrs, dict) else {}
        events[visitor].append(Event(event_id, kind, stamp, category or None, item or None, url or None, attrs))
        raw.append((visitor, kind, item or None, stamp, attrs))
    return History(dict(events), raw, start, end)


def _datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def profiles_at(events: Mapping[str, Sequence[Event]], at: float) -> dict[str, Profile]:
    """Each visitor's profile as of `at`, from their events up to `at` (visitors with none are
    left out), replayed into a private memory store: the live stores' own counters."""
    settings = conf.get_settings()
    store = MemoryProfileStore(
        retention_seconds=settings["RETENTION_DAYS"] * DAY,
        settings={**settings, "RATE_LIMIT_PER_MINUTE": 10**12, "DEDUP_SECONDS": 0},
    )
    for visitor, visitor_events in events.items():
        past = [e for e in visitor_events if e.ts <= at]
        if past:
            store.record(visitor, past, now=at)
    return store.get_many(sorted(store.recent_visitors(0, 10**9)), at, FEATURE_WINDOWS)


def train_personas(history: History, now: float, seed: int, say: Say) -> tuple[PersonaModel, str]:
    """Cluster the profiles as of now, sync the editors' labels, publish; (model, version)."""
    profiles = list(profiles_at(history.events, now).values())
    say(f"  {len(profiles)} profiles; choosing k by silhouette")
    model = fit_personas(select(feature_matrix(profiles, now), PERSONA_FEATURES), seed=seed, say=say)
    say(f"  k={len(model.personas)}, silhouette {model.silhouette:.3f}")
    for persona in model.personas:
        say(f"  {persona.name} ({persona.slug}): {persona.size} profiles; {persona.description}")
    version = registry.publish(PERSONAS, model, {
        "features": list(PERSONA_FEATURES),
        "metrics": {"silhouette": model.silhouette, "k": len(model.personas), "silhouettes": model.silhouettes},
        "training_window": _window(history),
        "seed": seed,
        "personas": [{"slug": p.slug, "name": p.name, "size": p.size, "description": p.description} for p in model.personas],
    })
    sync_persona_labels(model, version)
    say(f"  published personas {version}")
    return model, version


@transaction.atomic
def sync_persona_labels(model: PersonaModel, version: str) -> None:
    """One PersonaLabel per persona. A name an editor gave is kept; description, size and version
    follow the model; personas the model no longer finds stay (rules may name them) but inactive."""
    for persona in model.personas:
        label, _ = PersonaLabel.objects.get_or_create(slug=persona.slug, defaults={"name": persona.name})
        label.description, label.size, label.model_version, label.active = persona.description, persona.size, version, True
        label.save()
    PersonaLabel.objects.exclude(slug__in=[p.slug for p in model.personas]).update(active=False)


def _window(history: History) -> dict[str, str]:
    return {"start": _datetime(history.start).isoformat(), "end": _datetime(history.end).isoformat()}


def labelled_rows(history: History, now: float) -> tuple[list[list[float]], dict[str, list[int]], list[str], list[float]]:
    """Features as of each weekly cutoff (the latest one HORIZON_DAYS before now) and what
    happened in the HORIZON_DAYS after it: (rows, labels per target, visitor per row, cutoffs).
    A cutoff needs a week of history before it, so the window bounds how many there are."""
    horizon = HORIZON_DAYS * DAY
    cutoffs = [now - horizon * k for k in range(1, MAX_CUTOFFS + 1) if now - horizon * k - history.start >= horizon]
    rows: list[list[float]] = []
    labels: dict[str, list[int]] = {target: [] for target in TARGETS}
    groups: list[str] = []
    for cutoff in cutoffs:
        profiles = profiles_at(history.events, cutoff)
        rows += feature_matrix(list(profiles.values()), cutoff)
        for visitor in profiles:
            after = [e for e in history.events[visitor] if cutoff < e.ts <= cutoff + horizon]
            labels["churn_risk"].append(int(not after))
            labels["purchase_intent"].append(int(any(e.type == "purchase" for e in after)))
            groups.append(visitor)
    return rows, labels, groups, cutoffs


def train_propensity(history: History, now: float, seed: int, say: Say) -> tuple[dict[str, PropensityModel], str]:
    """Fit and cross-validate each target, print its metrics, publish both; (models, version)."""
    rows, labels, groups, cutoffs = labelled_rows(history, now)
    if not cutoffs:
        raise NotEnoughData(f"propensity needs at least {2 * HORIZON_DAYS} days of events (a week of history and a week of outcomes); use --since {2 * HORIZON_DAYS} or more")
    say(f"  {len(rows)} rows from {len(set(groups))} visitors at {len(cutoffs)} weekly cutoffs")
    models = {}
    for target in TARGETS:
        models[target] = fit_propensity(target, rows, labels[target], groups, feature_names, seed=seed)
        say("  " + format_metrics(target, models[target].metrics))
    version = registry.publish(PROPENSITY, models, {
        "features": list(feature_names),
        "metrics": {target: model.metrics for target, model in models.items()},
        "training_window": _window(history),
        "cutoffs": [_datetime(c).isoformat() for c in cutoffs],
        "horizon_days": HORIZON_DAYS,
        "seed": seed,
    })
    say(f"  published propensity {version}")
    return models, version


def _train_recommender(history: History, now: float, seed: int, say: Say, report: TrainingReport) -> None:
    try:
        from .catalog import PRODUCT, site_catalog
        from .recommender import interactions_from_events, publish_problem, train_recommender
    except ImportError as error:  # the recommender ships separately (issue 7, items 1-2)
        say(f"  skipped: the recommender is not available ({error})")
        report.skipped.append("recommender")
        return
    catalog = site_catalog()
    pages = {item.id for item in catalog if item.item_type != PRODUCT}
    interactions = interactions_from_events(history.rows, page_items=pages)
    model = train_recommender(interactions, catalog, now=now, seed=seed, progress=lambda m: say(f"  {m}"))
    metadata = dict(getattr(model, "metadata", {}) or {})
    report.recommender = model
    problem = publish_problem(model)
    if problem is not None:  # the registry keeps serving the last good version
        logger.warning("recommender not published: %s", problem)
        say(f"  NOT published: {problem}; the last good version stays current")
        report.skipped.append("recommender")
        return
    report.versions[RECOMMENDER] = registry.publish(RECOMMENDER, model, {
        **metadata, "training_window": _window(history), "seed": seed, "interactions": len(interactions),
    })
    say(f"  published recommender {report.versions[RECOMMENDER]}")


def score_live_profiles(personas: PersonaModel | None, propensity: Mapping[str, PropensityModel], now: float, say: Say, chunk: int = 500) -> int:
    """Persona and scores for every visitor the configured store holds; returns how many were
    written. Without a persona model the stored persona is left as it is."""
    store = conf.get_profile_store()
    visitors = store.recent_visitors(now - conf.get("RETENTION_DAYS") * DAY, 10**9)
    written = 0
    for start in range(0, len(visitors), chunk):
        profiles = store.get_many(visitors[start : start + chunk], now, FEATURE_WINDOWS)
        written += store.set_model_outputs(model_outputs(profiles, personas, propensity, now))
    say(f"  scored {written} of {len(visitors)} live profiles")
    return written


def load_synthetic(visitors: int, seed: int = 7, days: int = 28, now: float | None = None, say: Say = print) -> int:
    """Generate `visitors` synthetic histories for the demo catalog, store the events not stored
    yet as Event rows and replay exactly those into the configured profile store (so the demo's
    live profiles exist). Event ids come from the seed, so running it twice adds nothing."""
    from .catalog import demo_catalog
    from .synthetic import generate_histories

    catalog = demo_catalog()
    if not catalog:
        raise NotEnoughData("the demo catalog is empty: run `manage.py load_demo` first")
    progress = Progress("generating visitors", visitors, say)
    histories = generate_histories(catalog, visitors=visitors, days=days, seed=seed, now=now, progress=progress)
    say(f"generated {visitors} synthetic visitors ({sum(len(h.events) for h in histories)} events, seed {seed})")
    stored = _stored_ids([h.visitor_id for h in histories])
    fresh = {h.visitor_id: [e for e in h.events if (h.visitor_id, e.id) not in stored] for h in histories}
    fresh = {visitor: events for visitor, events in fresh.items() if events}
    with transaction.atomic():
        rows = (_row(visitor, event) for visitor, events in fresh.items() for event in events)
        StoredEvent.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    store = conf.get_profile_store()
    replayed = Progress("replaying into the profile store", len(fresh), say)
    for done, (visitor, events) in enumerate(fresh.items(), start=1):
        _replay(store, visitor, events)
        replayed(done)
    added = sum(len(events) for events in fresh.values())
    say(f"stored {added} new events of {len(fresh)} visitors and replayed them into the profile store")
    return added


def _stored_ids(visitors: Sequence[str], chunk: int = 500) -> set[tuple[str, str]]:
    stored: set[tuple[str, str]] = set()
    for start in range(0, len(visitors), chunk):
        found = StoredEvent.objects.filter(visitor_id__in=visitors[start : start + chunk]).values_list("visitor_id", "event_id")
        stored.update(found)
    return stored


def _row(visitor: str, event: Event) -> StoredEvent:
    return StoredEvent(
        visitor_id=visitor, event_id=event.id, type=event.type, ts=_datetime(event.ts),
        category=event.category or "", item=event.item or "", url=event.url or "", attrs=dict(event.attrs),
    )


def _replay(store: Any, visitor: str, events: Sequence[Event], batch: int = 200) -> None:
    """Record in batches, each as of its last event's time: the store's rate limit counts events
    per minute of `now`, and a real visitor's events arrive spread over their visits. The snapshot
    (a device from the id: half mobile) is what lists the visitor among the store's recent
    visitors, which live counts and scoring read, as a real request's snapshot does."""
    snapshot = Snapshot(device="mobile" if int(visitor[-1], 16) % 2 else "desktop")
    for start in range(0, len(events), batch):
        part = events[start : start + batch]
        result = store.record(visitor, part, now=part[-1].ts, snapshot=snapshot)
        if result.rate_limited:
            logger.warning("synthetic visitor %s: a batch was rate limited by the profile store", visitor)
