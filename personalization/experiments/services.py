"""Who sees which arm, and counting what they saw and did.

The running experiments are compiled once into `LiveExperiment`s (core `ExperimentSpec`s plus
what each arm shows) and cached per process: reloaded when a request starts after an edit (signals), other processes
within SEGMENT_REFRESH_SECONDS (a version number in Redis). Choosing an arm costs no query.

Who takes part: a consenting visitor with an id, not a bot, in the audience segment, while the
experiment is running and inside its dates. Everyone else sees the control and is not counted
(editors' previews build a visitor without an id, so they never count).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tailored import conf
from tailored.core.bucketing import Arm, ExperimentSpec, assign
from tailored.core.types import Event, Visitor, Window

from . import counting
from .models import FALLBACK, HOLDOUT, Experiment

logger = logging.getLogger(__name__)

VERSION_KEY = "tl:v1:xp:version"


def covariate_hours() -> int:
    """CUPED's pre-period: the covariate is the primary goal's count over these hours before
    exposure (PERSONALIZATION["EXPERIMENT_CUPED_DAYS"], 14 by default)."""
    return int(conf.get("EXPERIMENT_CUPED_DAYS")) * 24


@dataclass(frozen=True, slots=True)
class LiveExperiment:
    """A running experiment, compiled for the hot path."""

    key: str
    target: str
    page_id: int
    spec: ExperimentSpec
    goals: tuple[str, ...]
    audience: str | None = None
    click_target: str = ""
    starts_at: float | None = None
    ends_at: float | None = None
    variants: Mapping[str, str] = field(default_factory=dict)  # arm -> variant id or FALLBACK
    pages: Mapping[str, int | None] = field(default_factory=dict)  # arm -> alternative page id
    # The other experiments of its layer: a visitor already in one of them never enters this one
    # (their ranges of the layer's draw are disjoint; this also holds when the ranges move).
    layer_mates: frozenset[str] = frozenset()
    target_id: str = ""  # what it tests: the personalized block's id, the page id, the block key
    factors: tuple[str, ...] = ()  # a factorial experiment: its factors, in the arm keys' order

    @property
    def control(self) -> str:
        return self.spec.arms[0].key

    @property
    def arm_keys(self) -> frozenset[str]:
        return frozenset(arm.key for arm in self.spec.arms)

    def in_dates(self, now: float) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (self.ends_at is None or now < self.ends_at)

    def counts_goal(self, event: Event) -> bool:
        if event.type not in self.goals:
            return False
        return not (event.type == "click" and self.click_target and event.attrs.get("target") != self.click_target)


@dataclass(frozen=True, slots=True)
class Running:
    """The running experiments, indexed the ways requests look them up."""

    by_key: Mapping[str, LiveExperiment] = field(default_factory=dict)
    by_variant: Mapping[str, LiveExperiment] = field(default_factory=dict)  # variant id -> experiment
    by_page: Mapping[int, LiveExperiment] = field(default_factory=dict)  # page target
    by_goal: Mapping[str, tuple[LiveExperiment, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, experiments: Iterable[LiveExperiment]) -> Running:
        by_key, by_variant, by_page, by_goal = {}, {}, {}, defaultdict(list)
        for live in experiments:
            by_key[live.key] = live
            if live.target == Experiment.Target.VARIANTS:
                by_variant.update((variant, live) for variant in live.variants.values() if variant != FALLBACK)
            elif live.target == Experiment.Target.PAGE:
                by_page[live.page_id] = live
            for goal in live.goals:
                by_goal[goal].append(live)
        return cls(by_key, by_variant, by_page, {goal: tuple(found) for goal, found in by_goal.items()})


class ExperimentCache:
    """Request paths only `peek` (never a query). `refresh` runs when a request starts: it
    reloads after an edit in this process, and at most every SEGMENT_REFRESH_SECONDS reads a
    version number other processes bump in Redis (a GET, not a database query)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = Running()
        self._dirty = True
        self._generation = 0
        self._version: object = None
        self._checked_at = float("-inf")

    def peek(self) -> Running:
        return self._running

    def refresh(self) -> Running:
        now = time.monotonic()
        if not self._dirty and now - self._checked_at >= conf.get("SEGMENT_REFRESH_SECONDS"):
            self._checked_at = now
            version = _remote_version()
            # Redis unreachable says nothing about edits: keep what is compiled (issue 14).
            if version is not UNKNOWN_VERSION and version != self._version:
                self._version, self._dirty = version, True
        if self._dirty:
            with self._lock:
                if self._dirty:
                    from .targets import compile_running

                    # Clean only if no edit came in while compiling, and only once it worked:
                    # a failed load is retried by the next request.
                    generation = self._generation
                    self._running = Running.of(compile_running())
                    self._dirty = generation != self._generation
        return self._running

    def invalidate(self) -> None:
        """Reload on the next refresh (this process only)."""
        self._generation += 1
        self._dirty = True

    def clear(self) -> None:
        """Forget every compiled experiment until the next refresh (tests: nothing leaks from a
        rolled-back transaction into the next test)."""
        self.invalidate()
        self._running = Running()

    def changed(self) -> None:
        """An experiment or a targeted page changed: reload here, and tell the other processes."""
        self.invalidate()
        client = getattr(conf.get_profile_store(), "client", None)
        if client is not None:
            try:
                client.incr(VERSION_KEY)
            except Exception as error:  # other processes then catch up on their next edit
                logger.warning("could not announce an experiment change: %s", error)


UNKNOWN_VERSION = object()  # Redis did not answer


def _remote_version() -> object:
    """The version other processes bumped on an edit (None: never bumped), or UNKNOWN_VERSION."""
    client = getattr(conf.get_profile_store(), "client", None)
    if client is None:
        return None
    try:
        return client.get(VERSION_KEY)
    except Exception:
        return UNKNOWN_VERSION


experiment_cache = ExperimentCache()


# -- Assignment -----------------------------------------------------------------------------------


def takes_part(visitor: Visitor | None, live: LiveExperiment, now: float) -> bool:
    """The gate: consenting (analytics is enough: an experiment is measured, not targeted; issue
    15 item 6), identified, not a bot, in the audience, experiment in its dates."""
    if visitor is None or visitor.id is None or not visitor.consent.allows_events:
        return False
    if visitor.context.device == "bot" or not live.in_dates(now):
        return False
    return live.audience is None or live.audience in visitor.segments


def group_for(visitor: Visitor, live: LiveExperiment) -> str | None:
    """The visitor's sticky group (an arm key or HOLDOUT), assigning on first sight; None when
    the hash leaves them out of the experiment's traffic."""
    stored = visitor.profile.assignments.get(live.key)
    if stored is None:
        if any(mate in visitor.profile.assignments for mate in live.layer_mates):
            return None  # taken by another experiment of the layer
        assignment = assign(live.spec, visitor.id)
        if assignment is None:
            return None
        wanted = HOLDOUT if assignment.in_holdout else assignment.arm
        # HSETNX: if another request assigned first, theirs is kept and returned.
        stored = conf.get_profile_store().assign(visitor.id, live.key, wanted)
    if stored != HOLDOUT and stored not in live.arm_keys:
        return None  # an arm that was removed: the visitor leaves the test
    return stored


def arm_for(visitor: Visitor | None, live: LiveExperiment, now: float | None = None, expose: bool = True) -> str:
    """The arm this visitor sees. Taking part, the exposure is counted (once per visitor);
    anyone else sees the control, uncounted. A store failure shows the control, never an error."""
    now = time.time() if now is None else now
    if not takes_part(visitor, live, now):
        return live.control
    try:
        group = group_for(visitor, live)
        if group is None:
            return live.control
        if expose:
            _expose(visitor, live, group, now)
    except Exception as error:
        logger.warning("experiment %s: assignment or exposure failed, showing the control: %s", live.key, error)
        return live.control
    return live.control if group == HOLDOUT else group


def _expose(visitor: Visitor, live: LiveExperiment, group: str, now: float) -> None:
    backend = counting.counters()
    if counting.exposure_memo.seen(backend, live.key, visitor.id):
        return  # the common case on later blocks and pages: no call at all
    if backend.exposed_arm(live.key, visitor.id) is None:  # exposed in another process: no covariate lookup
        backend.expose(live.key, group, visitor.id, now, covariate(visitor, live, now))
    counting.exposure_memo.remember(backend, live.key, visitor.id)


def covariate(visitor: Visitor, live: LiveExperiment, now: float) -> int:
    """x for CUPED: the visitor's count of the primary goal in the pre-period before exposure."""
    window = Window(live.goals[0], covariate_hours())
    if window in visitor.profile.windows:
        return visitor.profile.windows[window]
    return conf.get_profile_store().get(visitor.id, now, (window,)).count_within(window)


@dataclass(frozen=True, slots=True)
class Pick:
    """What a running "variants" experiment shows: the variant's index (None: the fallback),
    and which experiment and arm decided it."""

    index: int | None
    experiment: str
    arm: str


def pick_variant(variant_keys: Sequence[str], visitor: Visitor | None, now: float | None = None) -> Pick | None:
    """For PersonalizedBlock.choose: what a running "variants" experiment on these variants shows
    this visitor, or None when no experiment runs on them (the targeting rules choose)."""
    running = experiment_cache.peek()
    live = next((running.by_variant[key] for key in variant_keys if key in running.by_variant), None)
    if live is None:
        return None
    arm = arm_for(visitor, live, now)
    shown = live.variants.get(arm, FALLBACK)
    return Pick(variant_keys.index(shown) if shown in variant_keys else None, live.key, arm)


def live_experiment(key: str) -> LiveExperiment | None:
    """The running experiment with this key, if any."""
    return experiment_cache.peek().by_key.get(key)


def assignments(visitor: Visitor) -> dict[str, str]:
    """The visitor's arms of the running experiments they were assigned to (holdout: the control)."""
    running = experiment_cache.peek().by_key
    return {
        key: (running[key].control if arm == HOLDOUT else arm)
        for key, arm in sorted(visitor.profile.assignments.items())
        if key in running and (arm == HOLDOUT or arm in running[key].arm_keys)
    }


# -- Conversions ----------------------------------------------------------------------------------


def count_conversions(visitor: Visitor, events: Sequence[Event], now: float | None = None) -> int:
    """Count goal events of stored (never duplicate) events for the running experiments the
    visitor was assigned to; each counts once per visitor and goal, only after exposure."""
    if visitor.id is None or not events or not visitor.profile.assignments:
        return 0
    running = experiment_cache.peek()
    now = time.time() if now is None else now
    counted = 0
    try:
        backend = counting.counters()
        for event in events:
            for live in running.by_goal.get(event.type, ()):
                if live.key in visitor.profile.assignments and live.counts_goal(event):
                    counted += backend.convert(live.key, event.type, visitor.id, event.ts, now)
    except Exception as error:  # counting must never fail the event request
        logger.warning("experiment conversions not counted: %s", error)
    return counted


def forget_visitor(visitor_id: str) -> None:
    """Erasure: drop the visitor's id from every experiment's exposure and conversion sets."""
    experiments = [(e.key, e.goal_list) for e in Experiment.objects.only("key", "goals")]
    backend = counting.counters()
    if experiments:
        backend.forget(visitor_id, experiments)
    counting.exposure_memo.forget(backend, visitor_id=visitor_id)


def export_visitor(visitor_id: str) -> dict[str, dict]:
    """For an export: what the experiments hold under the visitor's id, by experiment key: the
    exposure (arm, when, CUPED covariate) and the goals converted on (`Counters.export`)."""
    experiments = [(e.key, e.goal_list) for e in Experiment.objects.only("key", "goals")]
    return counting.counters().export(visitor_id, experiments) if experiments else {}


def forget_experiment(key: str, goals: Iterable[str]) -> None:
    """A deleted experiment: its visitors' stored arms and its Redis sets and counters go."""
    backend = counting.counters()
    conf.get_profile_store().clear_assignments(key, backend.exposed_visitors(key))
    backend.reset(key, goals)
    counting.exposure_memo.forget(backend, key=key)


def spec_of(
    key: str, seed: str, weights: Sequence[tuple[str, float]], traffic: int, holdout: int,
    layer: str | None = None, layer_range: tuple[float, float] = (0.0, 1.0),
) -> ExperimentSpec:
    """The core spec from the admin's percentages (and the layer's slice, if any)."""
    arms = tuple(Arm(arm, float(weight)) for arm, weight in weights)
    return ExperimentSpec(
        key=key, seed=seed, arms=arms, traffic=traffic / 100, holdout=holdout / 100, layer=layer, layer_range=layer_range
    )
