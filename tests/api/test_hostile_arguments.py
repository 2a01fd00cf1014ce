"""GraphQL arguments written in the document read as the same values do in variables: an inline
event keeps its epoch-millisecond `ts` (graphene's GenericScalar made every integer outside 32 bits
null), and a page id that only looks like digits ("²") names no page, as any other non-id does."""

from __future__ import annotations

import json
import time

import pytest

from tailored import conf
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

VISITOR = "6" * 32
SELECTION = "{ accepted stored duplicates errors { code message index field } }"
TRACK_VARIABLES = "mutation($events: [GenericScalar!]!) { trackEvents(events: $events) " + SELECTION + " }"


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def post(client, query: str, variables: dict | None = None):
    body = {"query": query, **({"variables": variables} if variables is not None else {})}
    return client.post("/graphql/", json.dumps(body), content_type="application/json")


def inline(events: str, declared: str = "") -> str:
    return f"mutation{declared} {{ trackEvents(events: {events}) {SELECTION} }}"


def page_views() -> int:
    return conf.get_profile_store().get(VISITOR, time.time()).page_views


def now_ms() -> int:
    return int(time.time() * 1000)


def test_an_event_written_inline_is_stored_as_the_same_event_in_a_variable_is(client):
    consent_cookies(client, VISITOR)
    ts = now_ms()
    written = post(client, inline(f'[{{type: "page_view", id: "inline", ts: {ts}, category: "books"}}]'))
    passed = post(client, TRACK_VARIABLES, {"events": [{"type": "page_view", "id": "variable", "ts": ts, "category": "books"}]})
    expected = {"accepted": 1, "stored": 1, "duplicates": 0, "errors": []}
    assert written.status_code == passed.status_code == 200
    assert written.json() == passed.json() == {"data": {"trackEvents": expected}}
    assert page_views() == 2


def test_an_inline_event_keeps_every_field_and_its_refusals_name_the_field(client):
    consent_cookies(client, VISITOR)
    ts = now_ms()
    events = (f'[{{type: "dwell", id: "d", ts: {ts}, seconds: 12.5}}, {{type: "page_view", id: "p", ts: {ts}, category: 7}}, '
              f'{{type: "page_view", id: "q", ts: {ts - 8 * 86_400_000}}}]')
    result = post(client, inline(events)).json()["data"]["trackEvents"]
    assert (result["accepted"], result["stored"]) == (1, 1)
    assert result["errors"] == [
        {"code": "invalid_event", "message": "must be a string, got int", "index": 1, "field": "category"},
        {"code": "invalid_event", "message": "the timestamp is more than 7 days old", "index": 2, "field": "ts"},
    ]


def test_one_inline_event_is_a_list_of_one_and_variables_inside_it_are_read(client):
    consent_cookies(client, VISITOR)
    single = post(client, inline(f'{{type: "page_view", id: "one", ts: {now_ms()}}}')).json()
    within = post(client, inline('[{type: "page_view", id: "two", ts: $ts}]', "($ts: GenericScalar)"), {"ts": now_ms()}).json()
    assert single["data"]["trackEvents"]["stored"] == within["data"]["trackEvents"]["stored"] == 1
    assert page_views() == 2


@pytest.mark.parametrize(("value", "message"), [
    ("9" * 30, "an integer has 30 digits; the limit is 20"),
    ("-" + "9" * 21, "an integer has 21 digits; the limit is 20"),
    ("1e400", "the number 1e400 is too large to represent"),
])
def test_an_inline_number_the_json_body_would_refuse_is_refused_and_nothing_is_stored(client, value, message):
    """The same numbers in variables are refused whole (tailored.events.json_body); written in the
    document, the call fails with the same message and stores no event, not even the valid one."""
    consent_cookies(client, VISITOR)
    response = post(client, inline(f'[{{type: "page_view", id: "ok", ts: {now_ms()}}}, {{type: "dwell", id: "d", ts: {now_ms()}, seconds: {value}}}]'))
    body = response.json()
    assert body["data"] == {"trackEvents": None}
    assert [error["message"] for error in body["errors"]] == [message]
    assert page_views() == 0
    raw = json.dumps({"query": TRACK_VARIABLES, "variables": {"events": [{"seconds": "NUMBER"}]}}).replace('"NUMBER"', value)
    in_variables = client.post("/graphql/", raw, content_type="application/json")
    assert in_variables.status_code == 400 and message in in_variables.json()["errors"][0]["message"]


# recommendedPages(item:) -----------------------------------------------------------------------


def recommended_page_ids(client, item: str) -> list[str]:
    body = post(client, "query($item: ID) { recommendedPages(itemType: \"article\", first: 3, item: $item) { id } }", {"item": item}).json()
    assert "errors" not in body, body
    return [page["id"] for page in body["data"]["recommendedPages"]]


@pytest.mark.parametrize("item", ["\u00b2", "\u0663", "1\u00b2", "9" * 5000])
def test_an_item_that_only_looks_like_a_number_names_no_page(client, item):
    """str.isdigit takes "²" (int() then failed with Python's message) and "٣" (int() made it 3)."""
    assert recommended_page_ids(client, item) == recommended_page_ids(client, "not-a-page")


def test_the_item_written_inline_is_read_the_same(client):
    body = post(client, '{ recommendedPages(itemType: "article", first: 3, item: "\u00b2") { id } }').json()
    assert "errors" not in body, body
    assert [page["id"] for page in body["data"]["recommendedPages"]] == recommended_page_ids(client, "not-a-page")
