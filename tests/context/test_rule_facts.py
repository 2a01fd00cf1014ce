"""The request facts rules read (issue 18 items 1, 2, 4): query parameters, referrers, the landing
page, the visitor's account (read only when a rule asks), a site's own facts, and dayparts moved
in settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.test import RequestFactory

from tailored.context import context_from_request
from tailored.context.place import MAX_PARAMETERS, MAX_VALUE_CHARS
from tailored.context.visitor_facts import SITE_READERS, register_rule_field
from tailored.core.fields import SITE_FIELDS
from tailored.core.selection import Recurrence
from tailored.models import Segment
from tailored.segments import segment_cache
from tailored.services import resolve_visitor

factory = RequestFactory()
pytestmark = pytest.mark.django_db
# Monday 6 January 2025, 08:00 UTC.
MONDAY_8_UTC = datetime(2025, 1, 6, 8, 0, tzinfo=UTC).timestamp()


def build(path="/", data=None, now=MONDAY_8_UTC, user=None, **meta):
    request = factory.get(path, data or {}, HTTP_HOST="shop.example", **meta)
    request.user = user or AnonymousUser()
    return context_from_request(request, now)


def test_any_query_parameter_is_a_fact_first_value_wins():
    context = build("/offers/", {"promo": ["spring", "other"], "ref": "partner-7"})
    assert context.query == {"promo": "spring", "ref": "partner-7"}
    assert context.path == "/offers/"


def test_hostile_query_strings_are_bounded():
    many = "bad name=1&" + "&".join(f"p{i}=v" for i in range(5000))
    long = "promo=" + "x" * 10_000
    contexts = []
    for query in (many, long):
        request = factory.get("/?" + query, HTTP_HOST="shop.example")
        request.user = AnonymousUser()
        contexts.append(context_from_request(request, MONDAY_8_UTC))
    assert list(contexts[0].query) == [f"p{i}" for i in range(MAX_PARAMETERS)]  # "bad name" is no rule's
    assert len(contexts[1].query["promo"]) == MAX_VALUE_CHARS


def test_referrer_url_and_host_without_www():
    context = build(HTTP_REFERER="https://www.news.example/story?id=4")
    assert (context.referrer, context.referrer_host) == ("https://www.news.example/story?id=4", "news.example")
    assert context.landing_page == "/"  # arrived from another site: the visit lands here


def test_a_same_site_referrer_carries_the_landing_parameters_one_step():
    context = build("/products/", HTTP_REFERER="https://shop.example/?promo=spring")
    assert context.session_query == {"promo": "spring"}
    assert context.query == {}
    assert context.landing_page is None  # an internal page: the landing page is not this one


def test_a_foreign_referrers_parameters_are_not_remembered():
    context = build("/products/", HTTP_REFERER="https://news.example/?promo=spring")
    assert context.session_query == {}


def test_dayparts_follow_settings(settings):
    settings.PERSONALIZATION = {
        **settings.PERSONALIZATION,
        "DAYPARTS": {"morning": "09:00", "afternoon": "12:00", "evening": "17:00", "night": "21:00"},
    }
    assert build(now=MONDAY_8_UTC).daypart == "night"  # 08:00 is before the site's morning
    assert build(now=MONDAY_8_UTC + 3600).daypart == "morning"
    assert build(now=MONDAY_8_UTC + 3600 + 59 * 60).local_minute == 9 * 60 + 59


def test_local_time_to_the_minute(settings):
    settings.TIME_ZONE = "UTC"
    assert build(now=MONDAY_8_UTC + 37 * 60).local_minute == 8 * 60 + 37


@pytest.fixture
def user_rule(db):
    segment = Segment.objects.create(
        name="Gold members", slug="gold", rule={"field": "user.groups", "op": "contains", "value": "Gold"}
    )
    segment_cache.invalidate()
    yield segment
    segment_cache.invalidate()


def test_account_facts_only_when_a_rule_reads_them(db, django_user_model):
    user = django_user_model.objects.create_user("ann", password="x")
    segment_cache.invalidate()
    context = build(user=user)
    assert context.logged_in is False  # no rule asks: the account is not read at all


def test_account_facts_when_a_rule_reads_them(user_rule, django_user_model):
    user = django_user_model.objects.create_user("ann", password="x", is_staff=True)
    user.date_joined = datetime.fromtimestamp(MONDAY_8_UTC, UTC) - timedelta(days=40)
    user.save()
    user.groups.add(Group.objects.create(name="Gold"))
    context = build(user=user)
    assert (context.logged_in, context.is_staff, context.user_groups) == (True, True, ("Gold",))
    assert round(context.account_age_days) == 40
    assert build().logged_in is False  # an anonymous visitor


def test_a_logged_in_group_member_is_in_the_segment(user_rule, client, django_user_model):
    user = django_user_model.objects.create_user("bob", password="x")
    user.groups.add(Group.objects.create(name="Gold"))
    request = factory.get("/", HTTP_HOST="shop.example")
    request.user, request.COOKIES = user, {}
    assert "gold" in resolve_visitor(request).segments
    request = factory.get("/", HTTP_HOST="shop.example")
    request.user = AnonymousUser()
    assert "gold" not in resolve_visitor(request).segments


@pytest.fixture
def plan_field(db):
    register_rule_field("plan", "text", lambda request: request.GET.get("plan"), label="Plan", choices=("free", "pro"))
    register_rule_field("broken", "flag", lambda request: 1 / 0, label="Broken")
    segment = Segment.objects.create(name="Pro", slug="pro", rule={"any": [
        {"field": "site.plan", "op": "eq", "value": "pro"}, {"field": "site.broken", "op": "eq", "value": True},
    ]})
    segment_cache.invalidate()
    yield segment
    segment_cache.invalidate()
    for name in ("plan", "broken"):
        SITE_FIELDS.pop(name, None)
        SITE_READERS.pop(name, None)


def test_a_site_registered_fact_reaches_rules_and_a_failing_reader_is_no_value(plan_field):
    context = build("/", {"plan": "pro"})
    assert dict(context.site) == {"plan": "pro"}  # the broken reader logged, the page goes on
    request = factory.get("/", {"plan": "pro"}, HTTP_HOST="shop.example")
    request.user = AnonymousUser()
    assert "pro" in resolve_visitor(request).segments


def test_a_site_fact_must_have_a_known_kind():
    with pytest.raises(ValueError, match="kind of number, text, flag, texts, time"):
        register_rule_field("tier", "colour", lambda request: None)


@pytest.mark.parametrize(
    ("zone", "moment", "expected"),
    [
        # Los Angeles springs forward on 8 March 2026: 02:00 PST becomes 03:00 PDT.
        ("America/Los_Angeles", datetime(2026, 3, 8, 9, 59, tzinfo=UTC), ("sun", 1 * 60 + 59)),
        ("America/Los_Angeles", datetime(2026, 3, 8, 10, 0, tzinfo=UTC), ("sun", 3 * 60)),
        # Sydney falls back on 5 April 2026 (Sunday local, Saturday in UTC): 02:30 comes twice.
        ("Australia/Sydney", datetime(2026, 4, 4, 15, 30, tzinfo=UTC), ("sun", 2 * 60 + 30)),
        ("Australia/Sydney", datetime(2026, 4, 4, 16, 30, tzinfo=UTC), ("sun", 2 * 60 + 30)),
        ("Australia/Sydney", datetime(2026, 4, 4, 17, 0, tzinfo=UTC), ("sun", 3 * 60)),
    ],
)
def test_the_visitors_minute_and_weekday_across_daylight_saving_changes(zone, moment, expected):
    request = factory.get("/", HTTP_HOST="shop.example")
    request.COOKIES["tl_tz"] = zone
    request.user = AnonymousUser()
    context = context_from_request(request, moment.timestamp())
    assert (context.weekday, context.local_minute) == expected
    window = Recurrence(frozenset({"sun"}), 2 * 60 + 30, 2 * 60 + 45)
    assert window.active(context, moment.timestamp()) is (expected[1] == 150)
