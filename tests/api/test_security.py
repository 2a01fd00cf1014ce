"""The GraphQL endpoint's limits, persisted operations, API keys and CORS (issue 6), over HTTP."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from graphql import get_introspection_query
from tailored.models import ApiKey
from tailored.server_visitors import forget_api_keys, verify_api_key
from tests.helpers import signed_visitor_id

pytestmark = pytest.mark.django_db

OPERATIONS = Path(__file__).parents[2] / "graphql" / "operations"
HOMEPAGE = (OPERATIONS / "homepage.graphql").read_text()
ORIGIN = "https://shop.example.com"


@pytest.fixture(autouse=True)
def _store(memory_store):
    forget_api_keys()
    yield memory_store
    forget_api_keys()


def post(client, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/graphql/", data, content_type="application/json", **headers)


def rejected(response, code: str) -> str:
    """The message of a request refused before execution with `code`."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == [code], body
    return body["errors"][0]["message"]


def create_key(name: str = "Next.js") -> str:
    out = io.StringIO()
    call_command("tailored_api_key", "create", name, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


# API keys ------------------------------------------------------------------------------------


def test_a_key_is_printed_once_and_stored_hashed():
    raw = create_key()
    key = ApiKey.objects.get()
    assert len(raw) == 40 and raw.isalnum()
    assert key.prefix == raw[:8]
    assert key.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in json.dumps(list(ApiKey.objects.values()), default=str)
    assert verify_api_key(raw) == key.pk
    listing = io.StringIO()
    call_command("tailored_api_key", "list", stdout=listing)
    assert key.prefix in listing.getvalue() and "Next.js" in listing.getvalue()
    assert raw not in listing.getvalue()


@pytest.mark.parametrize("mangle", [lambda raw: raw[:-1] + ("a" if raw[-1] != "a" else "b"), lambda raw: "", lambda raw: raw * 4])
def test_a_wrong_key_is_refused(mangle):
    raw = create_key()
    assert verify_api_key(mangle(raw)) is None


def test_a_revoked_key_is_refused_at_once():
    raw = create_key()
    assert verify_api_key(raw) is not None
    call_command("tailored_api_key", "revoke", raw[:8], stdout=io.StringIO())
    assert verify_api_key(raw) is None
    assert ApiKey.objects.get().active is False
    with pytest.raises(CommandError, match="No API key matches"):
        call_command("tailored_api_key", "revoke", "nomatch", stdout=io.StringIO())


def test_verification_is_cached_and_last_used_is_written_at_most_once_a_minute(django_assert_num_queries):
    raw = create_key()
    t0 = 1_800_000_000.0
    with django_assert_num_queries(2):  # the key, then last_used_at
        key_id = verify_api_key(raw, now=t0)
    with django_assert_num_queries(0):  # cached
        assert verify_api_key(raw, now=t0 + 1) == key_id
    with django_assert_num_queries(1):  # cache expired; used 10 s ago, so not written again
        assert verify_api_key(raw, now=t0 + 10) == key_id
    with django_assert_num_queries(2):
        assert verify_api_key(raw, now=t0 + 61) == key_id
    assert ApiKey.objects.get().last_used_at.timestamp() == t0 + 61


# Limits --------------------------------------------------------------------------------------


def test_a_query_deeper_than_the_limit_is_refused(client):
    nested = "id " + "".join("children { " for _ in range(11)) + "id" + " }" * 11
    message = rejected(post(client, {"query": f'{{ page(urlPath: "/") {{ {nested} }} }}'}), "QUERY_TOO_DEEP")
    assert message == "The query is 13 levels deep; at most 12 levels are allowed."


def test_a_query_costlier_than_the_limit_is_refused(client):
    query = "{ pages(limit: 100) { children(limit: 100) { id title } } }"
    message = rejected(post(client, {"query": query}), "QUERY_TOO_COSTLY")
    assert message.startswith("The query's estimated cost is 20101; at most 5000 is allowed.")


def test_a_query_within_the_limits_runs(client):
    response = post(client, {"query": "{ pages(limit: 100) { id title } }"})
    assert response.status_code == 200
    assert "errors" not in response.json()
    assert response.json()["data"]["pages"]


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ pages(limit: 500) { id } }"},
        {"query": "query Pages($n: PositiveInt) { pages(limit: $n) { id } }", "variables": {"n": 500}},
        {"query": "query Pages($n: PositiveInt = 500) { pages(limit: $n) { id } }"},
    ],
    ids=["literal", "variable", "variable-default"],
)
def test_a_list_above_100_items_is_refused(client, body):
    message = rejected(post(client, body), "LIST_TOO_LARGE")
    assert message == "`pages` asks for 500 items with `limit`; at most 100 items may be asked for per list."


def test_a_document_above_the_size_limit_is_refused(client, personalization):
    personalization(GRAPHQL_MAX_DOCUMENT_CHARS=100)
    message = rejected(post(client, {"query": "{ pages { id title } }" + " " * 100}), "DOCUMENT_TOO_LARGE")
    assert "at most 100" in message


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ("{not json", "BAD_REQUEST", "POST body sent invalid JSON."),
        ("[1, 2]", "BAD_REQUEST", "The received data is not a valid JSON query."),
        ("{}", "BAD_REQUEST", "Must provide query string."),
        ({"query": 42}, "BAD_REQUEST", "`query` must be a string holding a GraphQL document."),
        ({"query": "{ visitor { id } }", "variables": [1]}, "BAD_REQUEST", "`variables` must be a JSON object."),
        ({"query": "{ visitor { id } }", "variables": "{oops"}, "BAD_REQUEST", "Variables are invalid JSON."),
        ({"query": "{ visitor { id } }", "operationName": 3}, "BAD_REQUEST", "`operationName` must be a string."),
        ({"query": "{ visitor { id "}, "GRAPHQL_PARSE_FAILED", "Syntax Error: Expected Name, found <EOF>."),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'nope' on type 'Query'."),
        ({"id": "no-such-operation"}, "PERSISTED_QUERY_NOT_FOUND", None),
        ({"id": {"a": 1}}, "PERSISTED_QUERY_NOT_FOUND", None),
    ],
    ids=lambda value: value if isinstance(value, str) and value.isupper() else None,
)
def test_a_malformed_request_is_a_clear_400_never_a_500(client, body, code, message):
    got = rejected(post(client, body), code)
    if message is not None:
        assert got == message


def test_an_unsupported_method_is_refused_with_a_code(client):
    response = client.put("/graphql/", "{}", content_type="application/json")
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    response = client.get("/graphql/", {"query": "mutation { __typename }"})
    assert response.status_code == 405
    assert response.json()["errors"] == [
        {"message": "Can only perform a mutation operation from a POST request.", "extensions": {"code": "METHOD_NOT_ALLOWED"}}
    ]


# Persisted operations ------------------------------------------------------------------------


def test_a_persisted_operation_by_id_answers_like_its_document(client):
    full = post(client, {"query": HOMEPAGE})
    assert full.status_code == 200 and "errors" not in full.json()
    digest = hashlib.sha256(HOMEPAGE.encode()).hexdigest()
    apollo = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    for body in ({"id": "homepage"}, {"id": digest}, apollo):
        assert post(client, body).json() == full.json(), body
    assert client.get("/graphql/", {"id": "homepage"}).json() == full.json()


@pytest.mark.parametrize("method", ["get", "post"])
def test_extensions_nested_too_deep_name_no_persisted_operation(client, method):
    """Not a 500 (RecursionError in the hash look-up): the document alone is answered."""
    deep = "[" * 5000
    if method == "get":
        response = client.get("/graphql/", {"query": "{ visitor { id } }", "extensions": deep})
    else:
        response = post(client, {"query": "{ visitor { id } }", "extensions": deep})
    assert response.status_code == 200 and "errors" not in response.json()
    assert client.get("/graphql/", {"extensions": deep}).status_code == 400  # no document at all


def test_persisted_only_refuses_other_documents(client, personalization):
    personalization(GRAPHQL_PERSISTED_ONLY=True)
    message = rejected(post(client, {"query": "{ visitor { id } }"}), "PERSISTED_QUERY_REQUIRED")
    assert message.startswith("Only persisted operations are accepted here")
    by_id = post(client, {"id": "homepage"})
    assert by_id.status_code == 200 and "errors" not in by_id.json()
    # The exact text of a persisted document is that document.
    assert post(client, {"query": HOMEPAGE}).json() == by_id.json()


def test_every_committed_operation_is_within_the_limits(client):
    for path in sorted(OPERATIONS.glob("*.graphql")):
        body = post(client, {"id": path.stem}).json()
        codes = {error.get("extensions", {}).get("code") for error in body.get("errors", [])}
        assert not codes & {"QUERY_TOO_DEEP", "QUERY_TOO_COSTLY", "LIST_TOO_LARGE"}, (path.name, body)


# Introspection -------------------------------------------------------------------------------


def test_introspection_is_for_editors_unless_enabled(client, personalization):
    query = {"query": get_introspection_query()}
    message = rejected(post(client, query), "INTROSPECTION_DISABLED")
    assert "graphql/schema.graphql" in message
    client.force_login(get_user_model().objects.get(username="editor"))
    assert post(client, query).json()["data"]["__schema"]["queryType"]["name"] == "Query"
    client.logout()
    personalization(GRAPHQL_INTROSPECTION=True)
    assert post(client, query).status_code == 200


def test_typename_is_not_introspection(client):
    response = post(client, {"query": "{ visitor { __typename id } }"})
    assert response.json()["data"]["visitor"]["__typename"] == "VisitorType"


# CORS ----------------------------------------------------------------------------------------


@pytest.fixture
def headless_origin(personalization):
    personalization(CORS_ORIGINS=[ORIGIN])
    return ORIGIN


def test_a_preflight_from_a_headless_origin_is_allowed(client, headless_origin):
    response = client.options(
        "/graphql/",
        HTTP_ORIGIN=headless_origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-tailored-key, x-tailored-visitor, x-tailored-context",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == headless_origin
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response["Access-Control-Allow-Methods"]
    allowed = {name.strip().lower() for name in response["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-tailored-key", "x-tailored-visitor", "x-tailored-context"} <= allowed
    assert "Origin" in response["Vary"]


def test_a_preflight_from_another_origin_gets_no_cors_headers(client, headless_origin):
    response = client.options(
        "/graphql/", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_requests_from_the_headless_origin_may_read_the_answer(client, headless_origin):
    ok = post(client, {"query": "{ visitor { id } }"}, HTTP_ORIGIN=headless_origin)
    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == headless_origin
    assert ok["Access-Control-Allow-Credentials"] == "true"
    refused = post(client, {"query": "{ nope }"}, HTTP_ORIGIN=headless_origin)
    assert refused.status_code == 400
    assert refused["Access-Control-Allow-Origin"] == headless_origin  # errors are readable too
    other = post(client, {"query": "{ visitor { id } }"}, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


def test_no_origin_is_allowed_by_default(client):
    response = post(client, {"query": "{ visitor { id } }"}, HTTP_ORIGIN=ORIGIN)
    assert "Access-Control-Allow-Origin" not in response


def test_the_event_endpoint_stays_same_origin(client, headless_origin):
    client.cookies["tl_consent"] = "analytics.personalization"
    client.cookies["tl_vid"] = signed_visitor_id("a" * 32)
    response = client.post(
        "/api/events", json.dumps({"events": []}), content_type="application/json", HTTP_ORIGIN=headless_origin
    )
    assert response.status_code == 403
    assert response.json()["error"] == "cross_site"
    assert "Access-Control-Allow-Origin" not in response
