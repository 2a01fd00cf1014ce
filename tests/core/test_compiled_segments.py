"""The enabled segments run as one compiled function (issue 21 item 7): it must give exactly the
answers of the rule tree (`CompiledRule.matches`) for every rule shape, and run each distinct read
once per visitor."""

from __future__ import annotations

import random

from tailored.core.rules import compile_rule
from tailored.core.segments import SegmentDefinition, compile_segments, matching_segments
from tailored.core.types import DAYPARTS, Context, Profile, Window

CATEGORIES = ("electronics", "outdoors", "books")
NOW = 1_764_000_000.0


def leaf(rng: random.Random) -> dict:
    makers = [
        lambda: {"count": {"event": "page_view", "category": rng.choice(CATEGORIES), "within_hours": rng.choice((1, 24, 48))},
                 "op": rng.choice(("gte", "gt", "lt", "lte", "eq", "ne")), "value": rng.randint(0, 4)},
        lambda: {"count": {"event": "page_view", "within_hours": 24}, "op": "between", "value": [1, rng.randint(1, 6)]},
        lambda: {"count": {"event": "page_view", "within_hours": 24}, "op": rng.choice(("in", "not_in")), "value": [0, 2, 3]},
        lambda: {"field": "profile.lifetime_value", "op": rng.choice(("gt", "lte", "eq")), "value": rng.choice((0, 50, 600))},
        lambda: {"field": "profile.sessions_7d", "op": "gte", "value": rng.randint(0, 4)},
        lambda: {"field": "context.device", "op": rng.choice(("eq", "ne")), "value": rng.choice(("mobile", "desktop"))},
        lambda: {"field": "context.device", "op": rng.choice(("in", "not_in")), "value": ["mobile", "tablet"]},
        lambda: {"field": "context.daypart", "op": "eq", "value": rng.choice(DAYPARTS)},
        lambda: {"field": "context.utm_campaign", "op": "matches", "value": "^spring"},
        lambda: {"field": "profile.recent_searches", "op": "contains", "value": rng.choice(("tent", "novel"))},
        lambda: {"field": "score.churn_risk", "op": "gte", "value": 0.5},
        lambda: {"avg_dwell": {"category": rng.choice(CATEGORIES)}, "op": "gte", "value": 30},
        lambda: {"sequence": {"views": rng.randint(1, 4), "within_minutes": rng.choice((10, 60))}},
        lambda: {"cart_abandoned": {"idle_minutes": rng.choice((30, 600))}},
        # issue 18: parameters, referrers, accounts, times that cross midnight, page counts
        lambda: {"field": "context.query.promo", "op": rng.choice(("eq", "ne")), "value": "spring"},
        lambda: {"field": rng.choice(("context.query.promo", "visit.query.promo")), "op": "present", "value": rng.random() < 0.5},
        lambda: {"field": "context.referrer_host", "op": "in", "value": ["news.example", "partner.example"]},
        lambda: rng.choice((
            {"field": "user.groups", "op": "contains", "value": "Gold"},
            {"field": "user.groups", "op": "contains_any", "value": ["Gold", "Staff"]},
        )),
        lambda: {"field": "user.groups", "op": "present"},
        lambda: {"field": "user.logged_in", "op": "eq", "value": True},
        lambda: {"field": "context.local_time", "op": "between", "value": rng.choice((["22:00", "02:00"], ["08:30", "10:00"]))},
        lambda: {"field": "context.local_hour", "op": "between", "value": rng.choice(([22, 2], [9, 17]))},
        lambda: {"count": {"event": "page_view", rng.choice(("page", "section")): rng.choice((7, "7", 9)), "within_hours": 24},
                 "op": rng.choice(("gte", "eq")), "value": rng.randint(0, 2)},
    ]
    return rng.choice(makers)()


def rule(rng: random.Random, depth: int = 0) -> dict:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return {"all": [rule(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 3 and roll < 0.5:
        return {"any": [rule(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 3 and roll < 0.6:
        return {"not": rule(rng, depth + 1)}
    return leaf(rng)


def visitor(rng: random.Random) -> tuple[Profile, Context]:
    windows = {Window(f"page_view|c:{c}", h): rng.randint(0, 4) for c in CATEGORIES for h in (1, 24, 48) if rng.random() < 0.7}
    windows[Window("page_view", 24)] = rng.randint(0, 4)
    windows.update({Window(f"page_view|{code}:{page}", 24): rng.randint(0, 3) for code in "ps" for page in (7, 9) if rng.random() < 0.6})
    profile = Profile(
        visitor_id="v",
        session_starts=tuple(sorted((NOW - rng.uniform(0, 10 * 86400) for _ in range(rng.randint(0, 5))), reverse=True)),
        cart={"1": 1} if rng.random() < 0.5 else {},
        cart_updated_at=NOW - rng.uniform(0, 86400) if rng.random() < 0.8 else None,
        last_purchase_at=NOW - rng.uniform(0, 86400) if rng.random() < 0.3 else None,
        lifetime_value=rng.choice((0.0, 50.0, 600.0)),
        recent_items=tuple((str(i), NOW - rng.uniform(0, 7200)) for i in range(rng.randint(0, 8))),
        recent_searches=tuple(rng.sample(("tent", "novel", "boots"), rng.randint(0, 2))),
        dwell={c: (rng.uniform(0, 300), rng.randint(0, 5)) for c in rng.sample(CATEGORIES, 2)},
        scores={"churn_risk": rng.random()} if rng.random() < 0.7 else {},
        windows=windows,
    )
    context = Context(
        device=rng.choice(("mobile", "desktop", "tablet", None)),
        daypart=rng.choice(DAYPARTS),
        utm_campaign=rng.choice((None, "spring-sale", "autumn")),
        query=rng.choice(({}, {"promo": "spring"}, {"promo": ""}, {"promo": "autumn"})),
        session_query=rng.choice(({}, {"promo": "spring"})),
        referrer_host=rng.choice((None, "news.example", "other.example")),
        logged_in=rng.random() < 0.5,
        user_groups=tuple(rng.sample(("Gold", "Staff", "Members"), rng.randint(0, 2))),
        local_minute=rng.choice((None, 0, 90, 120, 180, 510, 600, 1319, 1320, 1410)),
        local_hour=rng.choice((None, 0, 2, 3, 9, 17, 21, 22, 23)),
    )
    return profile, context


def test_the_compiled_set_answers_as_the_rule_trees_do():
    rng = random.Random(21)
    definitions = tuple(SegmentDefinition(f"s{i}", compile_rule(rule(rng))) for i in range(150))
    compiled = compile_segments(definitions)
    matched = 0
    for _ in range(2000):
        profile, context = visitor(rng)
        expected = frozenset(d.slug for d in definitions if d.rule.matches(profile, context, NOW))
        assert compiled(profile, context, NOW) == expected
        assert matching_segments(definitions, profile, context, NOW) == expected  # the cached path
        matched += len(expected)
    assert 0 < matched < 150 * 2000  # the visitors are neither in every segment nor in none


def test_a_value_the_editor_typed_is_data_never_code():
    odd = "x') or True or ('"
    definitions = (SegmentDefinition("odd", compile_rule({"field": "context.utm_campaign", "op": "eq", "value": odd})),)
    compiled = compile_segments(definitions)
    assert compiled(Profile(), Context(utm_campaign="spring"), NOW) == frozenset()
    assert compiled(Profile(), Context(utm_campaign=odd), NOW) == {"odd"}


def test_a_value_read_by_many_rules_is_read_once_per_visitor():
    calls = []

    class CountingProfile(Profile):
        __slots__ = ()

        def sessions_within(self, seconds, now):
            calls.append(seconds)
            return super().sessions_within(seconds, now)

    definitions = tuple(
        SegmentDefinition(f"s{n}", compile_rule({"field": "profile.sessions_7d", "op": "gte", "value": n})) for n in range(20)
    )
    profile = CountingProfile(session_starts=(NOW - 60, NOW - 7200))
    assert compile_segments(definitions)(profile, Context(), NOW) == {"s0", "s1", "s2"}
    assert len(calls) == 1
