"""The audience key and what a page's decisions read (issue 21 item 2), as pure functions."""

from __future__ import annotations

from tailored.core.audience import (
    AUDIENCE,
    PRIVATE,
    SHARED,
    Audience,
    audience_of,
    dependence,
    parse_audience_key,
    rule_facts,
    variant_facts,
    with_audience,
)
from tailored.core.selection import Recurrence, VariantTags
from tailored.core.types import Context


def test_a_key_round_trips_and_unknown_facts_read_as_a_dash():
    audience = audience_of(Context(device="mobile", country="GB", daypart="morning", weekday="sat", referrer_class="search"))
    assert audience.key == "mobile.GB.morning.sat"
    assert parse_audience_key(audience.key) == audience
    assert parse_audience_key("desktop.-.-.-") == Audience("desktop")


def test_malformed_keys_are_refused_whole():
    for bad in ("", "mobile", "mobile.GB.morning", "phone.GB.morning.sat", "mobile.gb.morning.sat",
                "mobile.GB.brunch.sat", "mobile.GB.morning.someday", "mobile.GB.morning.sat.extra", "x" * 50):
        assert parse_audience_key(bad) is None, bad


def test_the_key_sets_its_four_facts_and_drops_a_region_of_another_country():
    context = Context(device="desktop", country="US", region="US-CA", referrer_class="search")
    keyed = with_audience(context, Audience("mobile", "GB", "night", "sun"))
    assert (keyed.device, keyed.country, keyed.daypart, keyed.weekday) == ("mobile", "GB", "night", "sun")
    assert keyed.region is None and keyed.referrer_class == "search"
    assert with_audience(context, Audience("mobile", "US")).region == "US-CA"


def test_rule_facts_name_the_context_read_and_the_profile():
    rule = {"all": [
        {"field": "context.device", "op": "eq", "value": "mobile"},
        {"any": [{"field": "context.referrer_class", "op": "eq", "value": "search"},
                 {"not": {"count": {"event": "page_view", "within_hours": 24}, "op": "gte", "value": 3}}]},
        {"field": "score.churn", "op": "gte", "value": 0.5},
    ]}
    assert rule_facts(rule) == {"device", "referrer_class", "profile"}
    assert rule_facts({"some_new_condition": {}}) == {"unknown"}


def test_what_a_page_reads_decides_how_it_may_be_cached():
    segments = {"mobile": frozenset({"device"}), "fans": frozenset({"profile"}), "searchers": frozenset({"referrer_class"})}
    by_context = variant_facts(VariantTags("a", segments=frozenset({"mobile", "fans"}), dayparts=frozenset({"morning"}), regions=frozenset({"GB"})), segments)
    assert by_context == {"device", "profile", "daypart", "country"}
    assert dependence(by_context) == AUDIENCE
    assert dependence({"utm_campaign", "profile"}) == SHARED  # the URL is in every cache key; no profile without consent
    assert dependence(variant_facts(VariantTags("b", regions=frozenset({"GB-ENG"})), segments)) == PRIVATE
    assert dependence(variant_facts(VariantTags("c", segments=frozenset({"searchers"})), segments)) == PRIVATE
    assert dependence({"device", "unknown"}) == PRIVATE


def test_rules_on_this_requests_query_and_path_are_shared_but_the_visit_and_the_account_are_not():
    url_only = rule_facts({"all": [{"field": "context.query.promo", "op": "eq", "value": "x"},
                                   {"field": "context.path", "op": "matches", "value": "^/blog/"}]})
    assert dependence(url_only) == SHARED  # the URL is part of every cache key
    private_rules = [
        {"field": "visit.query.promo", "op": "present"},
        {"field": "user.logged_in", "op": "eq", "value": True},
        {"field": "context.referrer_host", "op": "eq", "value": "news.example"},
        {"field": "context.local_time", "op": "gte", "value": "08:00"},
    ]
    for rule in private_rules:
        assert dependence(rule_facts(rule)) == PRIVATE, rule


def test_a_weekly_schedule_in_the_visitors_time_is_private_in_the_sites_time_shared():
    visitor_clock = VariantTags("a", recurrence=Recurrence(frozenset({"mon"}), 60, 120))
    site_clock = VariantTags("b", recurrence=Recurrence(frozenset({"mon"}), 60, 120, "Europe/London"))
    assert dependence(variant_facts(visitor_clock, {})) == PRIVATE
    assert dependence(variant_facts(site_clock, {})) == SHARED
