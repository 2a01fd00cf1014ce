"""The values every decision works on. All frozen: a request's facts never change under it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

DEVICES = ("mobile", "tablet", "desktop", "bot")
DAYPARTS = ("morning", "afternoon", "evening", "night")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Consent:
    """What the visitor agreed to. `decided` is False until they answer the banner."""

    decided: bool = False
    analytics: bool = False
    personalization: bool = False
    # Sec-GPC / DNT: the browser asked not to be tracked; that overrides any stored answer.
    opted_out_by_browser: bool = False

    @property
    def allows_profile(self) -> bool:
        return self.personalization and not self.opted_out_by_browser


@dataclass(frozen=True, slots=True)
class Context:
    """Facts about this request only; never stored."""

    device: str = "desktop"
    daypart: str | None = None
    weekday: str | None = None
    local_hour: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """What the profile store holds about one visitor, as read at the start of a request.

    `category_views` maps a category slug to {hour bucket (epoch hours): views in that hour},
    which keeps "at least N views within H hours" exact to the hour.
    """

    visitor_id: str | None = None
    page_views: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    category_views: Mapping[str, Mapping[int, int]] = field(default_factory=lambda: _EMPTY)
    recent_items: tuple[str, ...] = ()

    def views_within(self, category: str, hours: int, now: float) -> int:
        """Views of `category` in the last `hours` hours, counting the current hour."""
        buckets = self.category_views.get(category)
        if not buckets:
            return 0
        oldest = hour_bucket(now) - hours + 1
        return sum(count for bucket, count in buckets.items() if bucket >= oldest)


EMPTY_PROFILE = Profile()


@dataclass(frozen=True, slots=True)
class Event:
    """One validated behavioural event. `ts` is epoch seconds (the client's clock, bounded)."""

    id: str
    type: str
    ts: float
    category: str | None = None
    item: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Visitor:
    """Everything a request knows about its visitor: the single input of every decision."""

    id: str | None
    consent: Consent
    context: Context
    profile: Profile
    segments: frozenset[str]


def hour_bucket(ts: float) -> int:
    """The epoch hour that contains `ts`."""
    return int(ts // 3600)
