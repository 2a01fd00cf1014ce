"""Hostile input to POST /api/traits, set_traits and `manage.py tailored_import_traits`: text that
no database stores (NUL, unpaired surrogates), JSON that json.loads alone turns into a 500 (deep
nesting, duplicate keys), numbers and user ids too large for their columns, and a Content-Length
that is not a number. Each is refused with its reason, as JSON, and nothing is stored."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tailored import conf
from tailored.activation.models import VisitorTraits
from tailored.activation.traits import TraitError, set_traits, validate_traits
from tailored.server_visitors import create_api_key

pytestmark = pytest.mark.django_db
ALICE = "a" * 32
UNSTORABLE = "must not contain NUL characters or unpaired surrogates"


@pytest.fixture
def api_key(db):
    _, raw = create_api_key("crm")
    return raw


def post(client, body: str, key: str, **headers):
    return client.post("/api/traits", data=body, content_type="application/json", HTTP_X_TAILORED_KEY=key, **headers)


def record(traits: str, who: str = f'"visitor_id": "{ALICE}"') -> str:
    """A body of one record, its traits written as JSON text (escapes kept as the client sent them)."""
    return '{"records": [{' + who + ', "traits": ' + traits + "}]}"


def assert_nothing_stored() -> None:
    assert not VisitorTraits.objects.exists()
    assert conf.get_profile_store().get(ALICE, 0).traits == {}


@pytest.mark.parametrize("key", ["account_type", "loyalty_tier"])  # a text and a choice trait
@pytest.mark.parametrize("escaped", ["a\\u0000b", "a\\ud800b", "\\udfff"])
def test_text_no_database_stores_is_refused_naming_the_key(client, declared, api_key, use_redis_store, key, escaped):
    response = post(client, record(f'{{"{key}": "{escaped}", "newsletter": true}}'), api_key)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_records" and "nothing was stored" in body["message"]
    assert body["errors"] == [{"index": 0, "key": key, "reason": UNSTORABLE}]
    assert_nothing_stored()


def test_set_traits_refuses_nul_and_unpaired_surrogates_too(declared, use_redis_store):
    with pytest.raises(TraitError) as caught:
        set_traits(ALICE, {"account_type": "a\x00b", "loyalty_tier": "gold\ud83d"})
    assert {(p.key, p.reason) for p in caught.value.problems} == {("account_type", UNSTORABLE), ("loyalty_tier", UNSTORABLE)}
    assert validate_traits({"account_type": "caf\u00e9 \U0001f3d5"}) == {"account_type": "caf\u00e9 \U0001f3d5"}  # a pair is fine
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"records": ' + "[" * 100_000 + "]" * 100_000 + "}", "json_too_deep"),
        (record('{"account_type": ' + "[" * 50_000 + "]" * 50_000 + "}"), "json_too_deep"),
        (record('{"account_type": "x", "account_type": "y"}'), "duplicate_key"),
        ('{"records": [{"visitor_id": "' + "b" * 32 + f'", "visitor_id": "{ALICE}", "traits": {{"account_type": "x"}}}}]}}', "duplicate_key"),
        (record('{"lifetime_orders": 1' + "0" * 400 + "}"), "number_out_of_range"),
        (record('{"lifetime_orders": 1e400}'), "number_out_of_range"),
        (record('{"lifetime_orders": NaN}'), "number_out_of_range"),
        ('{"records": [], "records": []}', "duplicate_key"),
        ('{"records": [{"user_id": ' + str(2**70) + ', "traits": {"account_type": "x"}}]}', "number_out_of_range"),  # 22 digits
    ],
)
def test_json_that_is_not_safe_is_a_400_with_the_parsers_code(client, declared, api_key, use_redis_store, body, code):
    client.raise_request_exception = True  # a RecursionError or OverflowError would be raised here, not hidden in a 500

    response = post(client, body, api_key)

    assert response.status_code == 400
    assert response.json()["error"] == code and response.json()["message"]
    assert_nothing_stored()


def test_a_body_that_is_not_json_or_not_utf8_is_still_invalid_body(client, declared, api_key, use_redis_store):
    assert post(client, "{not json", api_key).json()["error"] == "invalid_body"
    response = post(client, record('{"account_type": "\xff"}').encode("latin-1"), api_key)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_body")
    assert "not UTF-8" in response.json()["message"]
    assert_nothing_stored()


@pytest.mark.parametrize("number", [10**400, -(10**400), 10**16, 2**63])
def test_a_python_caller_gets_a_trait_error_for_a_number_too_large(declared, use_redis_store, number):
    with pytest.raises(TraitError) as caught:
        set_traits(ALICE, {"lifetime_orders": number})
    [problem] = caught.value.problems
    assert problem.key == "lifetime_orders"
    assert problem.reason.startswith("expected a number from -1e+15 to 1e+15, got ")
    assert len(problem.reason) < 120  # a 401-digit number is not copied into the reason
    assert_nothing_stored()


@pytest.mark.parametrize("user_id", [2**63, 10**20 - 1, -(2**63) - 1, str(2**63), str(2**70), "9" * 30])
def test_a_user_id_outside_64_bits_is_no_user(client, declared, api_key, use_redis_store, user_id):
    client.raise_request_exception = True  # SQLite raised OverflowError for these

    response = post(client, json.dumps({"records": [{"user_id": user_id, "traits": {"account_type": "x"}}]}), api_key)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_records"
    assert response.json()["errors"] == [{"index": 0, "key": None, "reason": f"no user has the id {user_id!r}"}]
    assert_nothing_stored()


def test_a_user_id_at_the_64_bit_limit_is_looked_up_not_refused_for_its_size(client, declared, api_key, use_redis_store):
    response = post(client, json.dumps({"records": [{"user_id": 2**63 - 1, "traits": {"account_type": "x"}}]}), api_key)
    assert response.json()["errors"] == [{"index": 0, "key": None, "reason": f"no user has the id {2**63 - 1}"}]


@pytest.mark.parametrize("length", ["abc", "1e3", "12abc", "-1", "0x10", "\u0661\u0662"])
def test_a_content_length_that_is_not_a_number_is_a_json_400(client, declared, api_key, use_redis_store, length):
    client.raise_request_exception = True
    body = record('{"account_type": "x"}')

    response = client.generic(
        "POST", "/api/traits", body.encode(), content_type="application/json", HTTP_X_TAILORED_KEY=api_key, CONTENT_LENGTH=length
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_content_length"
    assert response.json()["message"] == f"the Content-Length header is not a number of bytes: {length!r}"
    assert_nothing_stored()


def test_a_content_length_with_surrounding_spaces_is_read(client, declared, api_key, use_redis_store):
    body = record('{"account_type": "x"}').encode()
    response = client.generic(
        "POST", "/api/traits", body, content_type="application/json", HTTP_X_TAILORED_KEY=api_key, CONTENT_LENGTH=f" {len(body)} "
    )
    assert response.status_code == 200, response.content
    assert VisitorTraits.objects.get(visitor_id=ALICE).values == {"account_type": "x"}


# The CSV import -------------------------------------------------------------------------------


def import_csv(tmp_path, text: str) -> tuple[str, str]:
    path = tmp_path / "traits.csv"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("tailored_import_traits", str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_csv_cell_holding_nul_is_refused_by_its_line(tmp_path, declared, use_redis_store):
    out, err = import_csv(tmp_path, f"visitor_id,account_type,loyalty_tier\n{ALICE},ok,gold\n{'b' * 32},a\x00b,gold\x00\n")

    assert err.splitlines() == [f"line 3: account_type: {UNSTORABLE}", f"line 3: loyalty_tier: {UNSTORABLE}"]
    assert "checked 2 rows: 1 valid, 1 invalid" in out
    assert_nothing_stored()


def test_a_csv_user_id_outside_64_bits_is_no_user(tmp_path, declared, use_redis_store):
    out, err = import_csv(tmp_path, f"user_id,account_type\n{2**70},x\n{2**63},x\n")

    assert err.splitlines() == [f"line 2: no user has the id '{2**70}'", f"line 3: no user has the id '{2**63}'"]
    assert "checked 2 rows: 0 valid, 2 invalid" in out
    assert_nothing_stored()
