"""The built-in segments shipped with the demo (fixtures/demo/segments.json), each on a visitor who
belongs and one who does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailored.core.rules import compile_rule
from tailored.core.types import Context, Profile, Window
from tailored.events.schema import EVENT_TYPES

NOW = 1_764_000_000.0
SEGMENTS = {s["slug"]: s for s in json.loads((Path(__file__).parents[2] / "fixtures/demo/segments.json").read_text())["segments"]}
H, M = 3600, 60

CASES = {
    "new-visitors": (Profile(sessions=1), Profile(sessions=3)),
    "returning-visitors": (Profile(sessions=2), Profile(sessions=1)),
    "frequent-visitors": (
        Profile(session_starts=tuple(NOW - i * 20 * H for i in range(6))),
        Profile(session_starts=tuple(NOW - i * 40 * H for i in range(6))),
    ),
    "cart-abandoners": (
        Profile(cart={"7": 1}, cart_updated_at=NOW - 45 * M, windows={Window("add_to_cart", 24): 1}),
        Profile(cart={"7": 1}, cart_updated_at=NOW - 45 * M, last_purchase_at=NOW - 10 * M, windows={Window("add_to_cart", 24): 1}),
    ),
    "high-value-customers": (Profile(lifetime_value=650.0), Profile(lifetime_value=500.0)),
    "content-explorers": (Profile(session_content_views=4), Profile(session_content_views=4, session_converted=True)),
    "high-intent": (
        Profile(recent_items=(("1", NOW - 60), ("2", NOW - 300), ("3", NOW - 500))),
        Profile(recent_items=(("1", NOW - 60), ("2", NOW - 300), ("3", NOW - 700))),
    ),
    "electronics-fans": (
        Profile(windows={Window("page_view|c:electronics", 24): 3}),
        Profile(windows={Window("page_view|c:electronics", 24): 2}),
    ),
    "at-risk-churners": (Profile(scores={"churn_risk": 0.71}), Profile(scores={"churn_risk": 0.5})),
    "researchers": (Profile(persona="researcher"), Profile(persona="quick-buyer")),
}
CONTEXTS = {
    "mobile-morning-visitors": (Context(device="mobile", daypart="morning"), Context(device="mobile", daypart="evening")),
    "mobile-visitors": (Context(device="mobile"), Context(device="tablet")),
}


def test_every_built_in_segment_compiles_against_the_event_registry():
    for segment in SEGMENTS.values():
        compile_rule(segment["rule"], known_events=EVENT_TYPES)
    assert {"new-visitors", "returning-visitors", "frequent-visitors", "cart-abandoners", "high-value-customers",
            "content-explorers", "high-intent", "mobile-morning-visitors", "at-risk-churners"} <= set(SEGMENTS)
    assert {f"{c}-fans" for c in ("electronics", "home-kitchen", "outdoors", "books", "fashion", "beauty")} <= set(SEGMENTS)


@pytest.mark.parametrize("slug", sorted(CASES))
def test_profile_segments(slug):
    rule = compile_rule(SEGMENTS[slug]["rule"])
    member, other = CASES[slug]
    assert rule.matches(member, Context(), NOW)
    assert not rule.matches(other, Context(), NOW)


@pytest.mark.parametrize("slug", sorted(CONTEXTS))
def test_context_segments(slug):
    rule = compile_rule(SEGMENTS[slug]["rule"])
    member, other = CONTEXTS[slug]
    assert rule.matches(Profile(), member, NOW)
    assert not rule.matches(Profile(), other, NOW)
