"""When a trigger fires (issue 20): pure decisions over a visitor's profile, the trigger's state
for that visitor, and the clock. The stream workers load triggers, read profiles and send
(tailored.activation); everything they decide is here.

A state trigger (segment entry or exit, a score above a threshold, a loyalty milestone) fires on
a change the workers see: the condition was false at the last evaluation and is true now. The
first evaluation of a visitor for a trigger has no earlier state: it sets the baseline without
firing, unless the visitor first appeared after the trigger was enabled (a new visitor's first
match is an entry, not something they were already in). A scheduled trigger (cart or browse
abandonment) fires when its check comes due and the profile still shows what it waited for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .context import MINUTES_PER_DAY, in_daily_window
from .rules import CompiledRule
from .types import Context, Profile

SEGMENT_ENTERED = "segment_entered"
SEGMENT_LEFT = "segment_left"
SCORE_ABOVE = "score_above"
CART_ABANDONED = "cart_abandoned"
BROWSE_ABANDONED = "browse_abandoned"
BACK_IN_STOCK = "back_in_stock"
PRICE_DROP = "price_drop"
LOYALTY_MILESTONE = "loyalty_milestone"

STATE_KINDS = (SEGMENT_ENTERED, SEGMENT_LEFT, SCORE_ABOVE, LOYALTY_MILESTONE)
SCHEDULED_KINDS = (CART_ABANDONED, BROWSE_ABANDONED)
CATALOG_KINDS = (BACK_IN_STOCK, PRICE_DROP)
KINDS = STATE_KINDS + SCHEDULED_KINDS + CATALOG_KINDS


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window (site time) in which nothing is sent; a window whose start is after its
    end crosses midnight. Sends that fall in it wait for its end: deferred, never dropped."""

    start_minute: int
    end_minute: int

    def contains(self, minute: int) -> bool:
        # The end is exclusive: sending resumes at the minute the window ends.
        return minute != self.end_minute and in_daily_window(minute, self.start_minute, self.end_minute)

    def minutes_left(self, minute: int) -> int:
        """Minutes from `minute` until the window ends (0 outside it)."""
        if not self.contains(minute):
            return 0
        return (self.end_minute - minute) % MINUTES_PER_DAY


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """What the workers need of a Trigger row, validated (`trigger_spec_problem`)."""

    id: int
    kind: str
    params: Mapping[str, Any]
    cooldown_seconds: float
    enabled_since: float
    segment: CompiledRule | None = None  # for segment entry and exit
    condition: CompiledRule | None = None  # an extra rule the visitor must match when it fires
    quiet: QuietHours | None = None


def trigger_spec_problem(kind: str, params: Mapping[str, Any], has_segment: bool) -> str | None:
    """Why these settings cannot make a trigger (a sentence for editors), or None."""
    if kind not in KINDS:
        return f"unknown trigger kind {kind!r}"
    if kind in (SEGMENT_ENTERED, SEGMENT_LEFT):
        return None if has_segment else "choose the segment to watch"
    required = {
        SCORE_ABOVE: ("score", "threshold"),
        CART_ABANDONED: ("minutes",),
        BROWSE_ABANDONED: ("views", "minutes"),
        BACK_IN_STOCK: ("viewed_within_days",),
        PRICE_DROP: ("viewed_within_days",),
    }.get(kind, ())
    missing = [name for name in required if params.get(name) in (None, "")]
    if missing:
        return f"{kind.replace('_', ' ')} needs {', '.join(missing)}"
    if kind == LOYALTY_MILESTONE and params.get("purchases") is None and params.get("lifetime_value") is None:
        return "a loyalty milestone needs a number of purchases or a lifetime value"
    for name, value in params.items():
        if name != "score" and not _positive_number(value):
            return f"{name.replace('_', ' ')} must be a positive number, not {value!r}"
    return None


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def state_now(spec: TriggerSpec, profile: Profile, context: Context, now: float) -> bool:
    """The condition a state trigger watches, as it stands for this profile."""
    if spec.kind == SEGMENT_ENTERED:
        return spec.segment is not None and spec.segment.matches(profile, context, now)
    if spec.kind == SEGMENT_LEFT:
        # "Left" watches being outside: it fires on the change from inside to outside.
        return spec.segment is not None and not spec.segment.matches(profile, context, now)
    if spec.kind == SCORE_ABOVE:
        score = profile.scores.get(str(spec.params["score"]))
        return score is not None and score > float(spec.params["threshold"])
    if spec.kind == LOYALTY_MILESTONE:
        return milestone_reached(profile, spec.params)
    raise ValueError(f"{spec.kind} is not a state trigger")


def milestone_reached(profile: Profile, params: Mapping[str, Any]) -> bool:
    purchases, value = params.get("purchases"), params.get("lifetime_value")
    return (purchases is not None and profile.purchases >= purchases) or (
        value is not None and profile.lifetime_value >= value
    )


def state_fires(spec: TriggerSpec, before: bool | None, now_true: bool, profile: Profile) -> bool:
    """Whether a state trigger fires: false then true. Without an earlier state (`before` None),
    only a visitor first seen after the trigger was enabled fires (see the module docstring);
    a segment exit needs a known earlier state inside."""
    if not now_true:
        return False
    if before is None:
        if spec.kind == SEGMENT_LEFT:
            return False
        return profile.first_seen is not None and profile.first_seen >= spec.enabled_since
    return not before


def cart_abandoned(profile: Profile, idle_seconds: float, now: float) -> bool:
    """The cart holds something, has not changed for `idle_seconds`, and nothing was bought since."""
    if not any(quantity > 0 for quantity in profile.cart.values()) or profile.cart_updated_at is None:
        return False
    if profile.last_purchase_at is not None and profile.last_purchase_at >= profile.cart_updated_at:
        return False
    return profile.cart_updated_at + idle_seconds <= now


def browse_abandoned(profile: Profile, item: str, views: int, required_views: int, idle_seconds: float, now: float) -> bool:
    """The item was viewed at least `required_views` times, is not in the cart, and the visitor
    has been idle for `idle_seconds` since their last event."""
    if views < required_views or profile.cart.get(item, 0) > 0:
        return False
    return profile.last_seen is not None and profile.last_seen + idle_seconds <= now


def cooled_down(last_fired: float | None, cooldown_seconds: float, now: float) -> bool:
    """Whether the trigger may fire again for this visitor."""
    return last_fired is None or now - last_fired >= cooldown_seconds


def catalog_change(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether a product's change is news for a catalog trigger: back in stock (was out, is in)
    or cheaper (a lower price than before). `before`/`after` hold `in_stock` and `price`."""
    if kind == BACK_IN_STOCK:
        return before.get("in_stock") is False and after.get("in_stock") is True
    if kind == PRICE_DROP:
        old, new = before.get("price"), after.get("price")
        return isinstance(old, int | float) and isinstance(new, int | float) and new < old
    raise ValueError(f"{kind} is not a catalog trigger")
