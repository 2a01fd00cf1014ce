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


def counting_profile(**fields) -> tuple[Profile, list[float]]:
    """A Profile that notes each `sessions_within` call: how often a compiled set reads it."""
    calls: list[float] = []

    class CountingProfile(Profile):
        __slots__ = ()

        def sessions_within(self, seconds, now):
            calls.append(seconds)
            return super().sessions_within(seconds, now)

    return CountingProfile(**fields), calls


def test_a_value_read_by_many_rules_is_read_once_per_visitor():
    definitions = tuple(
        SegmentDefinition(f"s{n}", compile_rule({"field": "profile.sessions_7d", "op": "gte", "value": n})) for n in range(20)
    )
    profile, calls = counting_profile(session_starts=(NOW - 60, NOW - 7200))
    assert compile_segments(definitions)(profile, Context(), NOW) == {"s0", "s1", "s2"}
    assert len(calls) == 1


def test_rules_written_alike_are_asked_once_and_answer_for_each_segment():
    rng = random.Random(7)
    rules = [rule(rng) for _ in range(30)]
    definitions = tuple(SegmentDefinition(f"s{i}", compile_rule(rules[i % 30])) for i in range(90))  # each rule thrice
    compiled = compile_segments(definitions)
    for _ in range(500):
        profile, context = visitor(rng)
        assert compiled(profile, context, NOW) == frozenset(d.slug for d in definitions if d.rule.matches(profile, context, NOW))


def test_each_inline_read_reads_what_the_field_reads():
    """`rules.FIELD_ACCESS` writes a field's read inline in compiled sets: it must be the field's reader."""
    from tailored.core import rules as rules_module
    from tailored.core.fields import FIELDS, lookup

    rng = random.Random(3)
    kinds = [visitor(rng) for _ in range(300)]
    profiles = [
        Profile(page_views=rng.randint(0, 9), sessions=rng.randint(0, 9), session_content_views=rng.randint(0, 3),
                session_converted=rng.random() < 0.5, purchases=rng.randint(0, 3), scroll=rng.choice(((0, 0), (150, 2))),
                persona=rng.choice((None, "Bargain hunter")), preferences=tuple(rng.sample(CATEGORIES, rng.randint(0, 2))),
                recent_searches=p.recent_searches, session_starts=p.session_starts, lifetime_value=p.lifetime_value)
        for p, _ in kinds
    ]
    contexts = [
        Context(device=c.device, browser=rng.choice((None, "Chrome")), os=rng.choice((None, "iOS")), weekday=rng.choice((None, "mon")),
                country=rng.choice((None, "GB")), region=rng.choice((None, "GB-ENG")), city=rng.choice((None, "Leeds")),
                referrer_class=rng.choice((None, "search")), utm_source=rng.choice((None, "news")), locale=rng.choice((None, "en")),
                weather=rng.choice((None, "rain")), temperature_c=rng.choice((None, 12.5)), path=rng.choice((None, "/x/")),
                referrer=rng.choice((None, "https://a.example/")), is_staff=rng.random() < 0.5, account_age_days=rng.choice((None, 3.0)),
                daypart=c.daypart, local_hour=c.local_hour, local_minute=c.local_minute, referrer_host=c.referrer_host,
                utm_campaign=c.utm_campaign, logged_in=c.logged_in, user_groups=c.user_groups, query=c.query)
        for _, c in kinds
    ]
    for name, expression in rules_module.FIELD_ACCESS.items():
        read = FIELDS[name].read
        assert lookup(name) is FIELDS[name]
        code = compile(expression, name, "eval")
        for p, c in zip(profiles, contexts, strict=True):
            assert eval(code, {}, {"p": p, "c": c, "now": NOW}) == read(p, c, NOW), name  # noqa: S307 - our own table
    for name, op, (expression, operands) in (("score.churn_risk", "gte", ("p.scores.get({0})", ("churn_risk",))),
                                             ("context.query.promo", "eq", ("c.query.get({0})", ("promo",)))):
        leaf = compile_rule({"field": name, "op": op, "value": 1 if op == "gte" else "x"}).root
        assert leaf.access == (expression, operands)
        code = compile(expression.format("k"), name, "eval")
        for p, c in kinds:
            assert eval(code, {}, {"p": p, "c": c, "k": operands[0]}) == leaf.read(p, c, NOW)  # noqa: S307


def test_a_shared_test_that_raises_leaves_the_visitor_to_the_rule_trees():
    """A test two rules make is made for every visitor, even where the rules would not reach it;
    should it raise there, the visitor gets the rule trees' answer (here: no error at all)."""
    from tailored.core import fields

    fields.site_field("odd_fact", fields.TEXT)
    try:
        guarded = {"all": [{"field": "context.device", "op": "eq", "value": "mobile"},
                           {"field": "site.odd_fact", "op": "in", "value": ["a", "b"]}]}
        definitions = (
            SegmentDefinition("one", compile_rule(guarded)),
            SegmentDefinition("two", compile_rule({"any": [{"field": "user.logged_in", "op": "eq", "value": True}, guarded]})),
        )
        compiled = compile_segments(definitions)
        unhashable = Context(device="desktop", logged_in=True, site={"odd_fact": ["a"]})  # `in` raises TypeError on a list
        assert compiled(Profile(), unhashable, NOW) == {"two"}
        assert compiled(Profile(), Context(device="mobile", site={"odd_fact": "a"}), NOW) == {"one", "two"}
    finally:
        fields.SITE_FIELDS.pop("odd_fact", None)


def test_a_value_asked_in_one_place_is_read_only_when_reached():
    sessions = {"field": "profile.sessions_7d", "op": "gte", "value": 1}
    definitions = (SegmentDefinition("s", compile_rule({"all": [{"field": "context.device", "op": "eq", "value": "mobile"}, sessions]})),)
    profile, calls = counting_profile(session_starts=(NOW - 60,))
    assert compile_segments(definitions)(profile, Context(device="desktop"), NOW) == frozenset()
    assert calls == []
    assert compile_segments(definitions)(profile, Context(device="mobile"), NOW) == {"s"}
    assert len(calls) == 1


def test_a_window_hashes_as_its_fields_and_pickles_without_its_hash():
    import os
    import pickle
    import subprocess
    import sys

    window = Window("page_view|c:books", 24)
    assert hash(window) == hash(("page_view|c:books", 24)) and window == Window("page_view|c:books", 24)
    assert window != Window("page_view|c:books", 48) and repr(window) == "Window(counter='page_view|c:books', hours=24)"
    assert pickle.loads(pickle.dumps(window)) == window
    # Another process hashes strings differently: the window it loads is hashed there.
    check = ("import pickle, sys; from tailored.core.types import Window; w = pickle.loads(sys.stdin.buffer.read()); "
             "assert {Window('page_view|c:books', 24): 1}[w] == 1 and hash(w) == hash(('page_view|c:books', 24))")
    subprocess.run([sys.executable, "-c", check], input=pickle.dumps(window), check=True, env={**os.environ, "PYTHONHASHSEED": "123"})


def test_the_compiled_set_answers_as_the_rule_trees_do_whatever_the_values():
    """The spec's and the demo's rules, compiled as one set, over any profile and context (NaN,
    negative counts, odd text), answer as the rule trees do."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tests.core.test_rules_never_raise import RULES, contexts, profiles

    definitions = tuple(SegmentDefinition(f"s{i}", r) for i, r in enumerate(RULES + RULES[:10]))  # some written twice
    compiled = compile_segments(definitions)

    @settings(max_examples=300, deadline=None)
    @given(profile=profiles, context=contexts, now=st.floats(min_value=0, max_value=2e9))
    def check(profile, context, now):
        assert compiled(profile, context, now) == frozenset(d.slug for d in definitions if d.rule.matches(profile, context, now))

    check()


def test_windowed_counts_read_by_position_answer_as_by_lookup():
    """The counts are read by position once a profile's windows come in a known order; any other
    profile (another order, a window missing, none, equal windows that are other objects) is
    read window by window. Every one answers as the rule trees do."""
    windows = [Window(f"page_view|c:{c}", h) for c in CATEGORIES for h in (1, 24)]
    rules = [{"count": {"event": "page_view", "category": w.counter.split(":")[1], "within_hours": w.hours}, "op": "gte", "value": 2}
             for w in windows]
    definitions = tuple(SegmentDefinition(f"s{i}", compile_rule(r)) for i, r in enumerate(rules + [{"any": rules[:3]}]))
    compiled = compile_segments(definitions)
    keys = sorted({w for d in definitions for w in d.rule.windows}, key=lambda w: (w.counter, w.hours))
    rng = random.Random(5)
    for _ in range(300):
        counts = {w: rng.randint(0, 3) for w in keys}
        shapes = [
            counts,  # the order learnt from the first
            dict(reversed(counts.items())),
            {w: n for w, n in counts.items() if rng.random() < 0.5},
            {},
            {Window(w.counter, w.hours): n for w, n in counts.items()},  # equal, not the same objects
            {**counts, Window("page_view", 24): 9},
        ]
        for shape in shapes:
            profile = Profile(windows=shape)
            expected = frozenset(d.slug for d in definitions if d.rule.matches(profile, Context(), NOW))
            assert compiled(profile, Context(), NOW) == expected


def test_product_views_in_several_windows_counted_in_one_pass():
    items = tuple((str(i), NOW - seconds) for i, seconds in enumerate((5, 599, 600, 601, 1799, 1800, 3600, 7200, 1e9)))
    views = [(n, minutes) for minutes in (10, 30, 120) for n in (1, 2, 3, 4, 5, 6, 7, 8)]
    definitions = tuple(
        SegmentDefinition(f"v{n}-{m}", compile_rule({"sequence": {"views": n, "within_minutes": m}})) for n, m in views
    )
    compiled = compile_segments(definitions)
    for profile in (Profile(recent_items=items), Profile(recent_items=items[::-1]), Profile(), Profile(recent_items=items[3:6])):
        expected = frozenset(d.slug for d in definitions if d.rule.matches(profile, Context(), NOW))
        assert compiled(profile, Context(), NOW) == expected
    assert compiled(Profile(recent_items=items), Context(), NOW) & {"v2-10", "v3-10", "v5-30", "v6-30", "v7-120", "v8-120"} == {"v2-10", "v5-30", "v7-120"}
