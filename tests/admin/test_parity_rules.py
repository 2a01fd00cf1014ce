"""The parity table (issue 18 item 6): each wagtail-personalisation rule type beside the Tailored
rule that expresses it. For every row:

- an editor builds the rule in the segment admin's builder (rows posted through the real add
  view), it is saved as the expected JSON, and the edit view loads it back as the same rows;
- the same crafted requests are replayed through both semantics: the older plugin's, written out
  here from its documented behaviour (`theirs`), and ours (`context_from_request` + the compiled
  rule). They agree, except where ours differs on purpose, which is asserted as such.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse
from wagtail.models import Page, Site

from tailored.context import context_from_request
from tailored.core.rules import compile_rule
from tailored.core.types import Profile, Window
from tailored.models import Segment
from tailored.rule_sentences import sentence
from tailored.segments import segment_cache
from tests.conftest import DESKTOP_UA, MOBILE_UA

pytestmark = pytest.mark.django_db
factory = RequestFactory()
TABLET_UA = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
WEEKDAY_INDEX = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class Replay:
    """One crafted request: its path, headers, moment, account and page visits (for counts)."""

    path: str = "/"
    at: datetime = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday, in the site's zone (UTC)
    meta: dict[str, str] = field(default_factory=dict)
    logged_in: bool = False
    visits: int = 0  # visits to the counted page this session (theirs) / in the window (ours)
    differs: bool = False  # ours answers otherwise, on purpose (see the row's note)


@dataclass
class Row:
    name: str
    rows: list[dict[str, str]]  # what the editor enters in the builder
    rule: dict[str, Any]  # what is saved
    theirs: Callable[[Replay], bool]
    replays: list[Replay]
    note: str = ""


def their_time(start: str, end: str) -> Callable[[Replay], bool]:
    # TimeRule: start <= the server's clock <= end; a window past midnight never matches.
    return lambda r: start <= r.at.strftime("%H:%M") <= end


def their_days(*days: str) -> Callable[[Replay], bool]:
    return lambda r: WEEKDAY_INDEX[r.at.weekday()] in days  # DayRule: the server's weekday


def their_visits(op: str, count: int) -> Callable[[Replay], bool]:
    # VisitCountRule: a count of 0 never matches, whatever the operator.
    compare = {"more_than": lambda n: n > count, "less_than": lambda n: n < count, "equal_to": lambda n: n == count}[op]
    return lambda r: bool(r.visits) and compare(r.visits)


def their_query(parameter: str, value: str) -> Callable[[Replay], bool]:
    return lambda r: dict(re.findall(r"([^?&=]+)=([^&]*)", r.path)).get(parameter, "") == value


def their_devices(*devices: str) -> Callable[[Replay], bool]:
    kinds = {MOBILE_UA: "mobile", TABLET_UA: "tablet", DESKTOP_UA: "desktop"}
    return lambda r: kinds.get(r.meta.get("HTTP_USER_AGENT", "")) in devices


def their_referral(pattern: str) -> Callable[[Replay], bool]:
    return lambda r: "HTTP_REFERER" in r.meta and re.search(pattern, r.meta["HTTP_REFERER"]) is not None


def their_country(code: str) -> Callable[[Replay], bool]:
    return lambda r: r.meta.get("HTTP_CF_IPCOUNTRY", "").upper() == code  # from the CDN's header


ROWS = [
    Row(
        "Time",
        [{"type": "field", "field": "context.local_time", "op": "between", "value": "22:00, 02:00"}],
        {"field": "context.local_time", "op": "between", "value": ["22:00", "02:00"]},
        their_time("22:00", "02:00"),
        [Replay(at=datetime(2026, 3, 4, 12, 0, tzinfo=UTC)), Replay(at=datetime(2026, 3, 4, 23, 30, tzinfo=UTC), differs=True),
         Replay(at=datetime(2026, 3, 5, 1, 30, tzinfo=UTC), differs=True), Replay(at=datetime(2026, 3, 5, 3, 0, tzinfo=UTC)),
         # Ours reads the visitor's clock: 23:30 in Tokyo is 14:30 UTC on the server.
         Replay(at=datetime(2026, 3, 4, 14, 30, tzinfo=UTC), meta={"HTTP_COOKIE": "tl_tz=Asia/Tokyo"}, differs=True)],
        "ours crosses midnight in one row and reads the visitor's local time; theirs the server's",
    ),
    Row(
        "Day",
        [{"type": "field", "field": "context.weekday", "op": "in", "value": "sat, sun"}],
        {"field": "context.weekday", "op": "in", "value": ["sat", "sun"]},
        their_days("sat", "sun"),
        [Replay(at=datetime(2026, 3, 7, 12, 0, tzinfo=UTC)), Replay(at=datetime(2026, 3, 4, 12, 0, tzinfo=UTC)),
         # Saturday 06:00 in Auckland while the server is still on Friday.
         Replay(at=datetime(2026, 3, 6, 17, 0, tzinfo=UTC), meta={"HTTP_COOKIE": "tl_tz=Pacific/Auckland"}, differs=True)],
        "ours is the visitor's weekday",
    ),
    Row(
        "Visit count",
        [{"type": "page_visits", "where": "page", "page": "{page}", "op": "gt", "value": "2", "hours": "24"}],
        {"count": {"event": "page_view", "page": "{page}", "within_hours": 24}, "op": "gt", "value": 2},
        their_visits("more_than", 2),
        [Replay(visits=3), Replay(visits=2), Replay(visits=0)],
        "ours counts in a time window (up to 90 days) kept with consent, theirs in the session",
    ),
    Row(
        "Visit count: never visited",
        [{"type": "page_visits", "where": "page", "page": "{page}", "op": "eq", "value": "0", "hours": "720"}],
        {"count": {"event": "page_view", "page": "{page}", "within_hours": 720}, "op": "eq", "value": 0},
        their_visits("equal_to", 0),
        [Replay(visits=0, differs=True), Replay(visits=1)],
        "theirs never matches a count of 0; ours says 'has not visited'",
    ),
    Row(
        "Query",
        [{"type": "query", "param": "promo", "remember": "page", "op": "eq", "value": "spring"}],
        {"field": "context.query.promo", "op": "eq", "value": "spring"},
        their_query("promo", "spring"),
        [Replay(path="/?promo=spring"), Replay(path="/?promo=autumn"), Replay(path="/")],
    ),
    Row(
        "Device",
        [{"type": "field", "field": "context.device", "op": "in", "value": "mobile, tablet"}],
        {"field": "context.device", "op": "in", "value": ["mobile", "tablet"]},
        their_devices("mobile", "tablet"),
        [Replay(meta={"HTTP_USER_AGENT": MOBILE_UA}), Replay(meta={"HTTP_USER_AGENT": TABLET_UA}),
         Replay(meta={"HTTP_USER_AGENT": DESKTOP_UA})],
    ),
    Row(
        "Referral",
        [{"type": "field", "field": "context.referrer", "op": "matches", "value": r"^https://(www\.)?news\.example/"}],
        {"field": "context.referrer", "op": "matches", "value": r"^https://(www\.)?news\.example/"},
        their_referral(r"^https://(www\.)?news\.example/"),
        [Replay(meta={"HTTP_REFERER": "https://www.news.example/story"}), Replay(meta={"HTTP_REFERER": "https://other.example/"}),
         Replay()],
        "ours bounds the pattern (200 characters) and the text it searches (500)",
    ),
    Row(
        "User is logged in",
        [{"type": "field", "field": "user.logged_in", "op": "eq", "choice": "true"}],
        {"field": "user.logged_in", "op": "eq", "value": True},
        lambda r: r.logged_in,
        [Replay(logged_in=True), Replay()],
    ),
    Row(
        "Origin country",
        [{"type": "field", "field": "context.country", "op": "eq", "value": "GB"}],
        {"field": "context.country", "op": "eq", "value": "GB"},
        their_country("GB"),
        [Replay(meta={"HTTP_CF_IPCOUNTRY": "GB"}), Replay(meta={"HTTP_CF_IPCOUNTRY": "FR"}), Replay()],
    ),
]


@pytest.fixture
def counted_page():
    home = Site.objects.get(is_default_site=True).root_page
    return home.add_child(instance=Page(title="Spring offers", slug="spring-offers"))


def with_page(value: Any, page: Page) -> Any:
    if isinstance(value, dict):
        return {k: with_page(v, page) for k, v in value.items()}
    if value == "{page}":
        return page.pk
    return value


def form_data(rows: list[dict[str, str]], page: Page) -> dict[str, str]:
    data = {"name": "Parity", "slug": "parity", "enabled": "on", "priority": "0", "rule-mode": "builder", "rule-match": "all", "rule-json": ""}
    for i, row in enumerate(rows):
        data.update({f"rule-{i}-{part}": str(value).replace("{page}", str(page.pk)) for part, value in row.items()})
    return data


def url(name: str, *args) -> str:
    return reverse(Segment.snippet_viewset.get_url_name(name), args=args)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_the_rule_is_built_in_the_admin_builder(row, client, counted_page, memory_store):
    client.force_login(get_user_model().objects.get(username="editor"))
    response = client.post(url("add"), form_data(row.rows, counted_page))
    assert response.status_code == 302, BeautifulSoup(response.content, "html.parser").select(".error-message")
    segment = Segment.objects.get(slug="parity")
    assert segment.rule == with_page(row.rule, counted_page)
    builder = BeautifulSoup(client.get(url("edit", segment.pk)).content, "html.parser").select_one("[data-rule-builder]")
    assert builder["data-mode"] == "builder"  # loads back as rows, not as raw JSON
    (shown,) = builder.select("[data-rows] > [data-row]")
    assert shown.select_one("[data-input=type] option[selected]")["value"] == row.rows[0]["type"]
    assert sentence(segment.rule).startswith("Visitors ")


def ours(rule: dict[str, Any], replay: Replay, django_user_model) -> bool:
    compiled = compile_rule(rule)
    request = factory.get(replay.path, **replay.meta)
    request.user = django_user_model.objects.create_user(f"u{id(replay)}") if replay.logged_in else AnonymousUser()
    if "HTTP_COOKIE" in replay.meta:
        name, _, value = replay.meta["HTTP_COOKIE"].partition("=")
        request.COOKIES[name] = value
    context = context_from_request(request, replay.at.timestamp())
    profile = Profile(windows=dict.fromkeys(compiled.windows, replay.visits))
    return compiled.matches(profile, context, replay.at.timestamp())


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_the_same_requests_through_both_semantics(row, settings, counted_page, django_user_model):
    settings.TIME_ZONE = "UTC"
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "GEO_COUNTRY_HEADER": "HTTP_CF_IPCOUNTRY"}
    rule = with_page(row.rule, counted_page)
    Segment.objects.create(name="Parity", slug="parity", rule=rule)  # user facts are read only when a rule asks
    segment_cache.invalidate()
    for replay in row.replays:
        expected = row.theirs(replay) != replay.differs
        assert ours(rule, replay, django_user_model) is expected, (row.name, replay)
    segment_cache.invalidate()


def test_every_difference_has_a_note():
    for row in ROWS:
        assert bool(row.note) or not any(r.differs for r in row.replays), row.name


def test_a_page_count_accepts_the_id_as_a_number_or_as_text():
    as_number = compile_rule({"count": {"event": "page_view", "page": 19, "within_hours": 24}, "op": "gte", "value": 1})
    as_text = compile_rule({"count": {"event": "page_view", "page": "19", "within_hours": 24}, "op": "gte", "value": 1})
    assert as_number.windows == as_text.windows == {Window("page_view|p:19", 24)}


def test_a_site_registered_fact_is_offered_in_the_builder_with_its_label_and_choices(client, memory_store):
    from tailored.context.visitor_facts import SITE_READERS, register_rule_field
    from tailored.core.fields import SITE_FIELDS

    register_rule_field("plan", "text", lambda request: None, label="Subscription plan", choices=("free", "pro"))
    try:
        client.force_login(get_user_model().objects.get(username="editor"))
        page = BeautifulSoup(client.get(url("add")).content, "html.parser")
        group = page.select_one("[data-rows] [data-input=field] optgroup[label=\"This site's facts\"]")
        assert [(o["value"], o.text) for o in group.select("option")] == [("site.plan", "Subscription plan")]
        catalog = page.select_one("[data-rule-builder] script[type='application/json']").string
        assert '"site.plan": {"kind": "text", "choices": ["free", "pro"]' in catalog
        response = client.post(url("add"), form_data([{"type": "field", "field": "site.plan", "op": "eq", "choice": "pro"}], Page()))
        assert response.status_code == 302
        assert Segment.objects.get(slug="parity").rule == {"field": "site.plan", "op": "eq", "value": "pro"}
    finally:
        SITE_FIELDS.pop("plan", None)
        SITE_READERS.pop("plan", None)


def test_a_crm_trait_is_a_row_type_with_its_kinds_operators_and_choices(client, memory_store):
    # No wagtail-personalisation rule reads CRM data; ours is a row type of its own (issue 20).
    from tailored.activation import traits as traits_module
    from tailored.activation.models import Trait
    from tailored.core.fields import declare_traits

    Trait.objects.create(key="loyalty_tier", label="Loyalty tier", kind="choice", choices=["silver", "gold", "platinum"])
    Trait.objects.create(key="newsletter", label="Newsletter subscriber", kind="boolean")
    try:
        client.force_login(get_user_model().objects.get(username="editor"))
        page = BeautifulSoup(client.get(url("add")).content, "html.parser")
        assert ("trait", "CRM trait") in [(o["value"], o.text) for o in page.select("[data-rows] [data-input=type] option")]
        catalog = page.select_one("[data-rule-builder] script[type='application/json']").string
        assert '"loyalty_tier": {"kind": "text", "choices": ["silver", "gold", "platinum"], "ops": [["eq", "is"], ["in", ' in catalog
        assert '"newsletter": {"kind": "flag", "choices": [], "ops": [["eq", "is"]]' in catalog
        rows = [{"type": "trait", "trait": "loyalty_tier", "op": "in", "value": "gold, platinum"},
                {"type": "trait", "trait": "newsletter", "op": "eq", "choice": "true"}]
        response = client.post(url("add"), form_data(rows, Page()))
        assert response.status_code == 302, BeautifulSoup(response.content, "html.parser").select(".error-message")
        segment = Segment.objects.get(slug="parity")
        assert segment.rule == {"all": [
            {"field": "trait.loyalty_tier", "op": "in", "value": ["gold", "platinum"]},
            {"field": "trait.newsletter", "op": "eq", "value": True},
        ]}
        builder = BeautifulSoup(client.get(url("edit", segment.pk)).content, "html.parser").select_one("[data-rule-builder]")
        assert builder["data-mode"] == "builder"
        shown = builder.select("[data-rows] > [data-row]")
        assert [row.select_one("[data-input=trait] option[selected]")["value"] for row in shown] == ["loyalty_tier", "newsletter"]
        assert [o["value"] for o in shown[1].select("[data-input=op] option")] == ["eq"]
        assert sentence(segment.rule) == "Visitors whose CRM loyalty tier is gold or platinum and whose CRM newsletter subscriber is yes."
        # An undeclared trait is refused at the row that names it.
        response = client.post(url("add"), {**form_data([{"type": "trait", "trait": "shoe_size", "op": "eq", "value": "42"}], Page()), "slug": "other"})
        errors = " ".join(e.get_text(" ", strip=True) for e in BeautifulSoup(response.content, "html.parser").select(".error-message, [data-row-error]"))
        assert "no trait 'shoe_size' is declared" in errors, errors
    finally:
        declare_traits(())
        traits_module._signature[:] = [None, float("-inf")]
