"""Whatever the profile and context hold, evaluating (and explaining) a compiled rule never raises."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tailored.core.rules import compile_rule
from tailored.core.types import DAYPARTS, DEVICES, Context, Profile, Window

ROOT = Path(__file__).parents[2]
RULES = [compile_rule(c["rule"]) for c in json.loads((ROOT / "fixtures/spec/rules.json").read_text())["cases"]]
RULES += [compile_rule(s["rule"]) for s in json.loads((ROOT / "fixtures/demo/segments.json").read_text())["segments"]]
WINDOWS = sorted({w for rule in RULES for w in rule.windows}, key=lambda w: (w.counter, w.hours))

maybe_time = st.none() | st.floats(min_value=0, max_value=2e9)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**9), 10**9)
profiles = st.builds(
    Profile,
    visitor_id=st.none() | st.text(max_size=8),
    last_seen=maybe_time,
    first_seen=maybe_time,
    page_views=st.integers(0, 10**6),
    sessions=st.integers(0, 10**4),
    session_starts=st.lists(st.floats(min_value=0, max_value=2e9), max_size=5).map(tuple),
    session_content_views=st.integers(0, 100),
    session_converted=st.booleans(),
    cart=st.dictionaries(st.text(max_size=4), st.integers(-3, 5), max_size=3),
    cart_updated_at=maybe_time,
    lifetime_value=st.floats(allow_nan=True),
    last_purchase_at=maybe_time,
    recent_items=st.lists(st.tuples(st.text(max_size=4), st.floats(min_value=0, max_value=2e9)), max_size=5).map(tuple),
    recent_searches=st.lists(st.text(max_size=10), max_size=3).map(tuple),
    dwell=st.dictionaries(st.sampled_from(["books", "outdoors"]), st.tuples(st.floats(allow_nan=True), st.integers(0, 5))),
    scroll=st.tuples(st.integers(0, 500), st.integers(0, 5)),
    persona=st.none() | st.text(max_size=10),
    scores=st.dictionaries(st.sampled_from(["churn_risk", "purchase_intent"]), numbers.map(float)),
    windows=st.dictionaries(st.sampled_from(WINDOWS), st.integers(0, 1000)) if WINDOWS else st.just({}),
)
contexts = st.builds(
    Context,
    device=st.sampled_from(DEVICES),
    daypart=st.none() | st.sampled_from(DAYPARTS),
    country=st.none() | st.text(max_size=3),
    region=st.none() | st.text(max_size=8),
    utm_campaign=st.none() | st.text(max_size=20),
    temperature_c=st.none() | st.floats(allow_nan=True),
    local_hour=st.none() | st.integers(-5, 30),
    local_minute=st.none() | st.integers(-5, 1500),
    path=st.none() | st.text(max_size=30),
    query=st.dictionaries(st.sampled_from(["promo", "gclid", "ref"]), st.text(max_size=12), max_size=3),
    session_query=st.dictionaries(st.sampled_from(["promo", "ref"]), st.text(max_size=12), max_size=2),
    referrer=st.none() | st.text(max_size=40),
    referrer_host=st.none() | st.text(max_size=20),
    landing_page=st.none() | st.text(max_size=20),
    logged_in=st.booleans(),
    is_staff=st.booleans(),
    user_groups=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    account_age_days=st.none() | st.floats(allow_nan=True),
)


@settings(max_examples=300, deadline=None)
@given(profile=profiles, context=contexts, now=st.floats(min_value=0, max_value=2e9))
def test_evaluation_never_raises(profile, context, now):
    for rule in RULES:
        assert rule.matches(profile, context, now) in (True, False)
        explained = rule.explain(profile, context, now)
        assert explained["matched"] in (True, False)
        json.dumps(explained, default=str)


def test_the_windows_strategy_covers_the_rules():
    assert Window("page_view|c:electronics", 24) in WINDOWS
