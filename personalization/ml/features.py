"""Behavioural features of a profile, for personas and propensity models (issue 7, item 3).

Every feature IS a rule-language operand: its value is read by compiling that operand with the
rule compiler and calling the compiled leaf's reader. Training, scoring and the persona -> rule
tree therefore see exactly what a segment rule would see, and a threshold the tree learns on a
feature is a condition the rule language evaluates the same way.

Average dwell has no profile-wide rule field (rules ask `avg_dwell` per category), so it is not a
feature; scroll depth and page and search counts carry the "reads carefully" signal instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tailored.core.rules import Leaf, compile_rule
from tailored.core.types import Context, Profile, Window

WEEK_HOURS = 7 * 24
LONG_HOURS = 90 * 24  # the longest window the rule language allows: the retention period
_NO_CONTEXT = Context()


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    operand: Mapping[str, Any]  # the rule node without "op"/"value"
    label: str  # how an editor reads it, e.g. "searches in the last 7 days"
    nullable: bool = False  # the rule field can be None (then the feature is 0)


def _count(event: str, hours: int = WEEK_HOURS) -> dict[str, Any]:
    return {"count": {"event": event, "within_hours": hours}}


FEATURES: tuple[Feature, ...] = (
    Feature("page_views", {"field": "profile.page_views"}, "page views"),
    Feature("sessions", {"field": "profile.sessions"}, "visits"),
    Feature("sessions_7d", {"field": "profile.sessions_7d"}, "visits in the last 7 days"),
    Feature("page_views_7d", _count("page_view"), "page views in the last 7 days"),
    Feature("searches_7d", _count("search"), "searches in the last 7 days"),
    Feature("cart_adds_7d", _count("add_to_cart"), "cart adds in the last 7 days"),
    Feature("searches_90d", _count("search", LONG_HOURS), "searches in the last 90 days"),
    Feature("cart_adds_90d", _count("add_to_cart", LONG_HOURS), "cart adds in the last 90 days"),
    Feature("cart_size", {"field": "profile.cart_size"}, "items in the cart"),
    Feature("purchases", {"field": "profile.purchases"}, "purchases"),
    Feature("lifetime_value", {"field": "profile.lifetime_value"}, "lifetime value"),
    Feature("average_scroll_depth", {"field": "profile.average_scroll_depth"}, "average scroll depth (%)", nullable=True),
    Feature("days_since_last_seen", {"field": "profile.days_since_last_seen"}, "days since the last visit", nullable=True),
    Feature("days_since_first_seen", {"field": "profile.days_since_first_seen"}, "days since the first visit", nullable=True),
)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
feature_names: tuple[str, ...] = tuple(f.name for f in FEATURES)
# Personas describe how someone shops, not how recently: recency and 7-day counts would split
# one kind of shopper into "active" and "lapsed" clusters, which churn risk already scores.
PERSONA_FEATURES: tuple[str, ...] = (
    "page_views", "sessions", "searches_90d", "cart_adds_90d", "purchases", "lifetime_value", "average_scroll_depth",
)


def _leaf(feature: Feature) -> Leaf:
    compiled = compile_rule({**feature.operand, "op": "gte", "value": 0})
    assert isinstance(compiled.root, Leaf)
    return compiled.root


_LEAVES = tuple(_leaf(f) for f in FEATURES)
# The windowed counts a profile must carry for `features`: pass these to the store's get/get_many.
FEATURE_WINDOWS: frozenset[Window] = frozenset().union(
    *(compile_rule({**f.operand, "op": "gte", "value": 0}).windows for f in FEATURES)
)


def features(profile: Profile, now: float) -> list[float]:
    """The feature vector of `profile` as of `now`, in `feature_names` order (None reads as 0)."""
    return [float(leaf.read(profile, _NO_CONTEXT, now) or 0.0) for leaf in _LEAVES]


def feature_matrix(profiles: Sequence[Profile], now: float) -> list[list[float]]:
    return [features(profile, now) for profile in profiles]


def select(rows: Sequence[Sequence[float]], names: Sequence[str]) -> list[list[float]]:
    """The columns `names` of full feature rows."""
    index = [feature_names.index(name) for name in names]
    return [[row[i] for i in index] for row in rows]


def feature_rule_field(name: str) -> dict[str, Any]:
    """The rule-language operand of a feature: `{"field": ...}` or `{"count": {...}}`; add
    "op" and "value" to make a condition."""
    return dict(BY_NAME[name].operand)


def condition(name: str, op: str, value: float) -> dict[str, Any]:
    """A rule condition on a feature that means the same as `feature <op> value` on the feature
    vector. A nullable field reads None where the feature reads 0, so an upper bound is written
    as `not (> value)`, which a None satisfies just as the 0 does."""
    feature = BY_NAME[name]
    if feature.nullable and op in ("lt", "lte") and value >= 0:
        flipped = "gte" if op == "lt" else "gt"
        return {"not": {**feature.operand, "op": flipped, "value": value}}
    return {**feature.operand, "op": op, "value": value}
