"""Every malformed body is a 400 (issue 14 item 5): hostile JSON (deep nesting, huge numbers, lone
surrogates, wrong types, duplicate keys) posted to every endpoint that takes JSON gets a 2xx or 4xx
with a JSON body, and a refused body changes nothing that is stored. A real Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailored import conf
from tailored.events.stream import STREAM_KEY
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db

VISITOR = "4" * 32
TRACK_EVENTS = (Path(__file__).parents[1] / "graphql" / "operations" / "track_events.graphql").read_text()
NOW_MS = str(int(time.time() * 1000))
LIMITED_PAGES = "query($a: PositiveInt) { pages(limit: $a) { id } }"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
# Fragments of JSON text a hostile client can put anywhere a value goes.
hostile_values = st.one_of(
    st.integers(min_value=20, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=20, max_value=3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.sampled_from(["1e400", "-1e400", "1E999", "NaN", "Infinity", "-Infinity", "1" * 5000, "-" + "9" * 400, str(2**64)]),
    st.integers(min_value=21, max_value=6000).map(lambda n: "7" * n),
    st.sampled_from(['"\\ud83d"', '"tents \\udfff"', '"\\udc00\\ud800"', '"\\u0000"', '"\\ud83c\\udfd5"']),
    json_values.map(json.dumps),
)
# Where the fragment goes: inside an event, in place of the batch, as a duplicate key, or alone.
templates = st.sampled_from([
    '{"events": [{"type": "page_view", "id": "h1", "ts": {v}}]}',
    '{"events": [{"type": "page_view", "id": "h2", "ts": ' + NOW_MS + ', "product_id": {v}}]}',
    '{"events": [{"type": "search", "id": "h3", "ts": ' + NOW_MS + ', "query": {v}}]}',
    '{"events": [{"type": "click", "id": "h4", "ts": ' + NOW_MS + ', "target": "b", "x": {v}}]}',
    '{"events": {v}}',
    '{"events": [], "events": [{"type": "page_view", "id": "h5", "ts": ' + NOW_MS + '}], "x": {v}}',
    '{"analytics": {v}, "personalization": true}',
    '{"analytics": true, "analytics": {v}}',
    '{"categories": [{v}]}',
    "{v}",
])
bodies = st.builds(lambda template, value: template.replace("{v}", value), templates, hostile_values)


def graphql_body(body: str | bytes) -> str | bytes:
    """A batch as trackEvents' variables; anything else is sent as it is."""
    if isinstance(body, str) and body.startswith('{"events"'):
        return '{"query": ' + json.dumps(TRACK_EVENTS) + ', "variables": ' + body + "}"
    return body


ENDPOINTS = {
    "events": lambda client, body: client.post("/api/events", body, content_type="application/json"),
    "graphql": lambda client, body: client.post("/graphql/", graphql_body(body), content_type="application/json"),
    "consent": lambda client, body: client.post("/consent/", body, content_type="application/json"),
    "preferences": lambda client, body: client.post("/preferences/", body, content_type="application/json"),
    "my_data": lambda client, body: client.generic("GET", "/api/me/data", body, content_type="application/json"),
    # A GET's variables are JSON in the query string; `$a` is an integer argument.
    "graphql_get": lambda client, body: client.get("/graphql/", {"query": LIMITED_PAGES, "variables": body}),
}


def stored(redis_client) -> tuple:
    """What a refused body must not change: the visitor's profile and the event stream."""
    profile = conf.get_profile_store().get(VISITOR, time.time())
    return (
        profile.page_views, dict(profile.event_counts), profile.recent_searches, profile.preferences,
        redis_client.xlen(STREAM_KEY),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies, endpoint=st.sampled_from(sorted(ENDPOINTS)))
def test_hostile_json_is_answered_in_json_and_a_refusal_changes_nothing(client, use_redis_store, redis_client, body, endpoint):
    consent_cookies(client, VISITOR)
    before = stored(redis_client)

    response = ENDPOINTS[endpoint](client, body)

    assert 200 <= response.status_code < 500, (endpoint, body[:200], response.content[:300])
    answer = json.loads(response.content)
    text = json.dumps(answer)  # no Python internals: "cannot convert float infinity to integer"
    assert "Error:" not in text and "Traceback" not in text and "cannot convert" not in text
    if response.status_code >= 400:
        assert stored(redis_client) == before, (endpoint, body[:200])


@pytest.mark.parametrize("endpoint", sorted(set(ENDPOINTS) - {"my_data", "graphql_get"}))
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("[" * 5000 + "]" * 5000, "json_too_deep"),
        ('{"events": [{"type": "page_view", "id": "a", "ts": 1e400}]}', "number_out_of_range"),
        ('{"events": [{"type": "page_view", "id": "a", "ts": ' + "1" * 5000 + "}]}", "number_out_of_range"),
        ('{"events": [], "events": []}', "duplicate_key"),
        (b"\xff\xfe{}", "malformed_json"),
    ],
)
def test_each_kind_of_hostile_body_is_a_400_with_its_code(client, use_redis_store, endpoint, body, code):
    consent_cookies(client, VISITOR)

    response = ENDPOINTS[endpoint](client, body)

    assert response.status_code == 400, response.content[:300]
    answer = response.json()
    if endpoint == "graphql":
        # graphene-django's code for plain invalid JSON stays BAD_REQUEST (tests/api/test_security.py)
        assert answer["errors"][0]["extensions"]["code"] == ("BAD_REQUEST" if code == "malformed_json" else code.upper())
    elif endpoint == "preferences":
        assert answer["error"] == "malformed_json"  # the survey names no detail: it only needs a list of slugs
    else:
        assert answer["error"] == code and answer["message"]


@pytest.mark.parametrize(
    ("variables", "code"),
    [('{"a": 1e400}', "NUMBER_OUT_OF_RANGE"), ('{"a": ' + "9" * 400 + "}", "NUMBER_OUT_OF_RANGE"), ("[" * 500 + "]" * 500, "JSON_TOO_DEEP")],
)
def test_a_get_with_hostile_variables_is_a_400_with_its_code(client, variables, code):
    response = client.get("/graphql/", {"query": LIMITED_PAGES, "variables": variables})

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"q": "' + "[" * 100 + '"}', None),  # brackets inside a string nest nothing
        ("[" * 32 + "]" * 32, None),  # the deepest allowed
        ("[" * 33 + "]" * 33, "json_too_deep"),
        ('{"a": "' + "[{" * 40 + '", "b": ' + "[" * 33 + "]" * 33 + "}", "json_too_deep"),  # bound passed, exact count
        ('{"id": 123456789012345678901}', "number_out_of_range"),  # 21 digits
        ('{"id": -12345678901234567890}', None),  # 20 digits and a sign
        ('{"q": "123456789012345678901234567890", "n": 5}', None),  # a long run inside a string
        ('{"q": "123456789012345678901234567890", "n": 1234567890123456789012}', "number_out_of_range"),
    ],
)
def test_parse_json_limits_count_what_is_outside_strings(body, code):
    from tailored.events.json_body import JsonBodyError, parse_json

    for form in (body, body.encode()):
        if code is None:
            assert parse_json(form) == json.loads(body)
        else:
            with pytest.raises(JsonBodyError) as refused:
                parse_json(form)
            assert refused.value.code == code


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ('{"events": [], "events": [{"type": "page_view", "id": "f1", "ts": ' + NOW_MS + "}]}", "DUPLICATE_KEY"),
        ('{"events": [{"type": "page_view", "id": "f2", "ts": NaN}]}', "NUMBER_OUT_OF_RANGE"),
    ],
)
def test_form_encoded_variables_are_read_by_the_same_parser(client, use_redis_store, redis_client, variables, code):
    consent_cookies(client, VISITOR)
    before = stored(redis_client)
    body = urlencode({"query": TRACK_EVENTS, "variables": variables})

    response = client.post("/graphql/", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["extensions"]["code"] == code
    assert stored(redis_client) == before


def test_a_graphql_document_that_is_not_utf8_is_a_400(client):
    response = client.post("/graphql/", b"\xff{ visitor { segments } }", content_type="application/graphql")

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "The query is not UTF-8 text."


@pytest.mark.parametrize("kind", [["purchase"], {"a": 1}, 7])
def test_an_event_type_that_is_not_text_is_refused_with_its_reason(client, use_redis_store, redis_client, kind):
    consent_cookies(client, VISITOR)
    batch = {"events": [{"type": kind, "id": "t1", "ts": int(NOW_MS)}]}
    before = stored(redis_client)

    rest = client.post("/api/events", json.dumps(batch), content_type="application/json")
    graphql = client.post("/graphql/", {"query": TRACK_EVENTS, "variables": batch}, content_type="application/json")

    assert rest.status_code == 400
    assert [r["field"] for r in rest.json()["rejected"]] == ["type"]
    result = graphql.json()["data"]["trackEvents"]
    assert result["accepted"] == 0 and "unhashable" not in json.dumps(result)
    assert stored(redis_client) == before


@pytest.mark.parametrize("size", [70_000, 3 * 1024 * 1024])  # over MAX_BATCH_BYTES; also over Django's own limit
def test_a_body_over_the_limit_is_a_json_400_however_large(client, use_redis_store, size):
    consent_cookies(client, VISITOR)

    response = client.post("/api/events", b"x" * size, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "body_too_large"
    assert str(size) in response.json()["message"]
