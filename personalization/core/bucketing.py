"""Deterministic experiment bucketing: the same visitor always lands in the same arm, on every
worker and in every language, without storing anything and without `random`.

Public API:

    unit_hash(seed, visitor_id) -> float in [0, 1)
    Arm(key, weight)
    ExperimentSpec(key, seed, arms, traffic=1.0, holdout=0.0, layer=None, layer_range=(0.0, 1.0))
    assign(spec, visitor_id) -> Assignment | None
    Assignment(experiment, arm, in_holdout)
    allocate_layer_ranges([(experiment_key, share), ...]) -> {experiment_key: (low, high)}
    overlapping_layer_ranges(specs) -> [(key_a, key_b), ...]
    in_global_holdout(visitor_id, share, salt=GLOBAL_HOLDOUT_SALT) -> bool

The hash recipe, so any other SDK can reproduce it (fixtures/spec/bucketing.json holds cases):

    digest = SHA-256 of the UTF-8 bytes of  seed + ":" + visitor_id
    u      = (first 8 bytes of digest as an unsigned big-endian 64-bit integer >> 11) / 2**53

Keeping the top 53 bits makes `u` an exact double strictly below 1 (dividing all 64 bits by
2**64 can round up to 1.0).

One assignment takes up to four independent draws, each `unit_hash` with its own seed, so that
changing one knob never reshuffles what another decided:

1. layer (only when `layer` is set): `unit_hash("layer:" + layer, visitor)` must fall in
   `layer_range` (low inclusive, high exclusive). Experiments of one layer get disjoint ranges of
   the same draw, so a visitor is in at most one of them (`allocate_layer_ranges`).
2. traffic: `unit_hash(seed + "|traffic", visitor) < traffic`, else not in the experiment.
3. holdout: `unit_hash(seed + "|holdout", visitor) < holdout` puts an entering visitor in the
   experiment's holdout: they see the control arm and are reported as their own group, outside
   the arm comparison. A holdout is a fixed, randomized baseline that stays comparable while arm
   weights move (a Thompson-sampling experiment reweights its arms; its holdout never changes).
4. arm: `unit_hash(seed, visitor)` falls in one arm's range of the normalized cumulative weights
   (arm i covers [c[i-1], c[i]) with c[-1] = 0 and the last bound set to exactly 1).

Stickiness across weight changes is not this module's job: the experiments app stores the first
assignment of each visitor.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

GLOBAL_HOLDOUT_SALT = "tailored-global-holdout"
_SHA256 = hashlib.sha256
_FIRST_UINT64 = struct.Struct(">Q").unpack_from  # big-endian, from the digest's first 8 bytes
_TOP_53_BITS = 11  # 64 - 53: shift that keeps the top 53 bits of the first 8 digest bytes
_UNIT = 2.0**-53


def unit_hash(seed: str, visitor_id: str) -> float:
    """A uniform, deterministic draw in [0, 1) for this seed and visitor (recipe in the module doc)."""
    return _draw(seed + ":", visitor_id)


def _draw(prefix: str, visitor_id: str) -> float:
    # The hot path: `prefix` is the seed with its ":" already appended (precomputed per spec).
    return (
        _FIRST_UINT64(_SHA256((prefix + visitor_id).encode()).digest())[0] >> _TOP_53_BITS
    ) * _UNIT


def in_global_holdout(visitor_id: str, share: float, salt: str = GLOBAL_HOLDOUT_SALT) -> bool:
    """Whether this visitor is in the site-wide holdout that sees no personalization at all,
    the baseline for measuring personalization's lift. `share` in [0, 1]."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"holdout share must be between 0 and 1, not {share}")
    return unit_hash(salt, visitor_id) < share


@dataclass(frozen=True, slots=True)
class Arm:
    """One alternative of an experiment; `weight` is relative (weights need not sum to 1)."""

    key: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where a visitor landed. `in_holdout` visitors see `arm` (the control) but are analysed
    as the experiment's holdout group, not as exposures of the control arm."""

    experiment: str
    arm: str
    in_holdout: bool = False


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """Everything `assign` needs. The first arm is the control. Validated on construction."""

    key: str
    seed: str
    arms: tuple[Arm, ...]
    traffic: float = 1.0  # share of eligible visitors who enter the experiment
    holdout: float = 0.0  # share of entering visitors kept on control as the holdout group
    layer: str | None = None
    layer_range: tuple[float, float] = (0.0, 1.0)
    # Precomputed for the hot path: cumulative arm bounds and each draw's "seed:" prefix.
    bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _arm_prefix: str = field(init=False, repr=False, compare=False)
    _traffic_prefix: str = field(init=False, repr=False, compare=False)
    _holdout_prefix: str = field(init=False, repr=False, compare=False)
    _layer_prefix: str | None = field(init=False, repr=False, compare=False)
    # Assignments are immutable, so each spec builds its possible answers once (building a
    # frozen dataclass costs about as much as a hash).
    _answers: tuple[Assignment, ...] = field(init=False, repr=False, compare=False)
    _held_out: Assignment = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arms", tuple(self.arms))
        object.__setattr__(self, "layer_range", tuple(self.layer_range))
        _validate(self)
        object.__setattr__(self, "bounds", cumulative_bounds([arm.weight for arm in self.arms]))
        object.__setattr__(self, "_arm_prefix", f"{self.seed}:")
        object.__setattr__(self, "_traffic_prefix", f"{self.seed}|traffic:")
        object.__setattr__(self, "_holdout_prefix", f"{self.seed}|holdout:")
        layer_prefix = None if self.layer is None else f"layer:{self.layer}:"
        object.__setattr__(self, "_layer_prefix", layer_prefix)
        answers = tuple(Assignment(self.key, arm.key, False) for arm in self.arms)
        object.__setattr__(self, "_answers", answers)
        object.__setattr__(self, "_held_out", Assignment(self.key, self.arms[0].key, True))

    @property
    def control(self) -> Arm:
        return self.arms[0]


def _validate(spec: ExperimentSpec) -> None:
    if not spec.arms:
        raise ValueError(f"experiment {spec.key!r} has no arms")
    keys = [arm.key for arm in spec.arms]
    if len(set(keys)) != len(keys):
        raise ValueError(f"experiment {spec.key!r} has duplicate arm keys: {keys}")
    if any(arm.weight < 0 for arm in spec.arms) or sum(arm.weight for arm in spec.arms) <= 0:
        raise ValueError(f"experiment {spec.key!r}: weights must be >= 0 with a positive total")
    if not 0.0 <= spec.traffic <= 1.0:
        raise ValueError(f"experiment {spec.key!r}: traffic must be in [0, 1], not {spec.traffic}")
    if not 0.0 <= spec.holdout < 1.0:
        raise ValueError(f"experiment {spec.key!r}: holdout must be in [0, 1), not {spec.holdout}")
    low, high = spec.layer_range
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"experiment {spec.key!r}: layer_range must satisfy 0 <= low <= high <= 1")
    if spec.layer is None and (low, high) != (0.0, 1.0):
        raise ValueError(f"experiment {spec.key!r}: a layer_range needs a layer name")


def cumulative_bounds(weights: Sequence[float]) -> tuple[float, ...]:
    """Upper bounds of each arm's range in [0, 1]; the last is exactly 1 so rounding leaves no gap."""
    total = float(sum(weights))
    bounds: list[float] = []
    running = 0.0
    for weight in weights:
        running += weight
        bounds.append(running / total)
    bounds[-1] = 1.0
    return tuple(bounds)


def assign(spec: ExperimentSpec, visitor_id: str) -> Assignment | None:
    """The arm this visitor sees, or None when they are outside the layer range or the traffic."""
    if spec._layer_prefix is not None:
        low, high = spec.layer_range
        if not low <= _draw(spec._layer_prefix, visitor_id) < high:
            return None
    # traffic == 1 needs no draw: every u in [0, 1) is below it.
    if spec.traffic < 1.0 and _draw(spec._traffic_prefix, visitor_id) >= spec.traffic:
        return None
    if spec.holdout > 0.0 and _draw(spec._holdout_prefix, visitor_id) < spec.holdout:
        return spec._held_out
    # A zero-weight arm has an empty range; bisect_right skips it.
    return spec._answers[bisect_right(spec.bounds, _draw(spec._arm_prefix, visitor_id))]


def allocate_layer_ranges(shares: Sequence[tuple[str, float]]) -> dict[str, tuple[float, float]]:
    """Disjoint, contiguous ranges of one layer's draw, in the given order from 0.

    `shares` pairs each experiment key with the share of the layer's visitors it may reach;
    the shares must total at most 1 (the rest of the layer is in no experiment).
    """
    ranges: dict[str, tuple[float, float]] = {}
    low = 0.0
    for key, share in shares:
        if key in ranges:
            raise ValueError(f"experiment {key!r} appears twice in the layer")
        if share < 0:
            raise ValueError(f"experiment {key!r} has a negative layer share")
        high = low + share
        if high > 1.0 + 1e-9:
            raise ValueError("layer shares add up to more than 1")
        ranges[key] = (low, min(high, 1.0))
        low = high
    return ranges


def overlapping_layer_ranges(specs: Iterable[ExperimentSpec]) -> list[tuple[str, str]]:
    """Pairs of experiments of the same layer whose ranges overlap (a configuration error)."""
    by_layer: dict[str, list[ExperimentSpec]] = {}
    for spec in specs:
        if spec.layer is not None:
            by_layer.setdefault(spec.layer, []).append(spec)
    clashes: list[tuple[str, str]] = []
    for members in by_layer.values():
        ordered = sorted(members, key=lambda spec: spec.layer_range)
        for i, first in enumerate(ordered):
            for second in ordered[i + 1 :]:
                if second.layer_range[0] >= first.layer_range[1]:
                    break
                if second.layer_range[0] < second.layer_range[1]:  # an empty range reaches no one
                    clashes.append((first.key, second.key))
    return clashes
