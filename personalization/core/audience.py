"""The audience key: the few request facts a shared cache may key a page on (issue 21 item 2).

A visitor who has not granted personalization has no profile, so every decision made for them
is a function of their request's context. Most of that context is coarse and shared by many
visitors: the device class, the country, the daypart and the weekday. Those four make the
audience key, e.g. "mobile.GB.morning.sat" ("-" for a fact nobody could establish). A proxy or
CDN computes the same key (docs/deploy/) and caches one copy of a page per key; the app, given
the key in a trusted header, takes those four facts from it, so its choices and the proxy's
cache key cannot disagree.

A page can be shared under the key only if its decisions read nothing else of the context:
`dependence` sorts the facts a page's blocks read into what the key covers, what the URL covers
(UTM parameters are part of every cache key) and what neither does (referrer, hour, region,
weather...), which makes the page private.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .selection import VariantTags
from .types import DAYPARTS, DEVICES, WEEKDAYS, Context

UNKNOWN = "-"
KEYED_FACTS = frozenset({"device", "country", "daypart", "weekday"})
URL_FACTS = frozenset({"utm_source", "utm_medium", "utm_campaign", "path"})
QUERY_FACT = "query."
# Facts no request of a visitor without personalization consent can change: their profile is
# empty, so profile counts, scores, CRM traits and the clock-derived profile fields are the same
# for all.
PROFILE_FACT = "profile"
_COUNTRY = re.compile(r"^[A-Z]{2}\Z")

# How a response may be cached, from the facts its decisions read (`dependence`).
SHARED = "shared"  # the same for every visitor without consent: any cache may keep it
AUDIENCE = "audience"  # one copy per audience key
PRIVATE = "private"  # depends on something no shared cache can key on


@dataclass(frozen=True, slots=True)
class Audience:
    device: str = "desktop"
    country: str | None = None
    daypart: str | None = None
    weekday: str | None = None

    @property
    def key(self) -> str:
        return ".".join(value or UNKNOWN for value in (self.device, self.country, self.daypart, self.weekday))


def audience_of(context: Context) -> Audience:
    """The audience a context belongs to (the app's own key when no proxy sent one)."""
    device = context.device if context.device in DEVICES else "desktop"
    return Audience(device, context.country, context.daypart, context.weekday)


def parse_audience_key(text: str | None) -> Audience | None:
    """The audience of a key such as "mobile.GB.morning.sat"; None when it is not a valid key
    (a malformed header is ignored, never trusted in part)."""
    if not text or len(text) > 40:
        return None
    parts = text.strip().split(".")
    if len(parts) != 4:
        return None
    device, country, daypart, weekday = (None if part == UNKNOWN else part for part in parts)
    if device not in DEVICES:
        return None
    if country is not None and not _COUNTRY.match(country):
        return None
    if daypart is not None and daypart not in DAYPARTS:
        return None
    if weekday is not None and weekday not in WEEKDAYS:
        return None
    return Audience(device, country, daypart, weekday)


def with_audience(context: Context, audience: Audience) -> Context:
    """The context with the key's four facts. A region outside the key's country is dropped:
    a subdivision must belong to the country the visitor is said to be in."""
    region = context.region if context.region and audience.country and context.region.startswith(audience.country + "-") else None
    return replace(
        context, device=audience.device, country=audience.country, daypart=audience.daypart,
        weekday=audience.weekday, region=region,
    )


_GROUPS = ("all", "any", "not")
_PROFILE_CONDITIONS = ("count", "avg_dwell", "sequence", "cart_abandoned")


def rule_facts(rule: Any) -> frozenset[str]:
    """The facts a rule (its JSON source) reads: context fact names, PROFILE_FACT for the
    profile and model scores, and the condition's own name for anything else (a condition this
    module does not know is never taken to be shared)."""
    facts: set[str] = set()
    pending: list[Any] = [rule]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, Mapping):
            groups = [node[name] for name in _GROUPS if name in node]
            if groups:
                pending.extend(groups)
            elif isinstance(node.get("field"), str):
                facts.add(_field_fact(node["field"]))
            elif any(name in node for name in _PROFILE_CONDITIONS):
                facts.add(PROFILE_FACT)
            else:
                facts.add("unknown")
    return frozenset(facts)


def _field_fact(field: str) -> str:
    if field.startswith(("profile.", "score.", "trait.")):  # traits are read with the profile
        return PROFILE_FACT
    return field.removeprefix("context.") if field.startswith("context.") else field


def variant_facts(tags: VariantTags, segment_facts: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """The facts choosing a variant reads: its context tags and its segments' rules. A segment
    missing from `segment_facts` (disabled or deleted) matches nobody, so it reads nothing."""
    facts: set[str] = set()
    for names, tagged in (
        (("device",), tags.devices), (("daypart",), tags.dayparts), (("weekday",), tags.weekdays),
        (("weather",), tags.weather), (("utm_campaign",), tags.campaigns),
    ):
        if tagged:
            facts.update(names)
    for code in tags.regions:
        facts.add("region" if "-" in code else "country")
    if tags.recurrence is not None and tags.recurrence.zone is None:  # the visitor's clock
        facts.update(("weekday", "local_minute"))
    for slug in tags.segments:
        facts |= segment_facts.get(slug, frozenset())
    return frozenset(facts)


def dependence(facts: Iterable[str]) -> str:
    """How a page whose decisions for a visitor without consent read `facts` may be cached.
    This request's own query parameters (`query.<name>`) are in the URL, like UTM parameters."""
    facts = {fact for fact in facts if not fact.startswith(QUERY_FACT)} - URL_FACTS - {PROFILE_FACT}
    if not facts:
        return SHARED
    return AUDIENCE if facts <= KEYED_FACTS else PRIVATE
