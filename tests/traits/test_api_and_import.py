"""POST /api/traits and `manage.py tailored_import_traits` (issue 20 item 4): every record or row
is checked first; one bad one writes nothing and is named precisely."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tailored import conf, services
from tailored.activation.models import VisitorTraits
from tailored.activation.traits_api import MAX_RECORDS
from tailored.server_visitors import create_api_key, revoke_api_keys

pytestmark = pytest.mark.django_db
ALICE, BOB = "a" * 32, "b" * 32


@pytest.fixture
def api_key(db):
    _, raw = create_api_key("crm")
    return raw


def post(client, body, key=None, raw=False):
    headers = {"HTTP_X_TAILORED_KEY": key} if key else {}
    data = body if raw else json.dumps(body)
    return client.post("/api/traits", data=data, content_type="application/json", **headers)


def test_records_are_stored_for_visitors_and_users(client, declared, api_key, use_redis_store, django_user_model):
    user = django_user_model.objects.create_user("crm-customer")
    response = post(client, {"records": [
        {"visitor_id": ALICE, "traits": {"loyalty_tier": "gold", "lifetime_orders": 12}},
        {"user_id": user.pk, "traits": {"newsletter": True}},
        {"user_id": str(user.pk), "traits": {"account_type": "business", "newsletter": None}},
    ]}, api_key)
    assert response.status_code == 200, response.json()
    assert response.json() == {"records": 3, "visitors": 2, "traits_set": 3, "traits_removed": 1}
    user_vid = services.user_visitor_id(user.pk)
    assert VisitorTraits.objects.get(visitor_id=user_vid).values == {"account_type": "business"}
    assert conf.get_profile_store().get(ALICE, 0).traits == {"loyalty_tier": "gold", "lifetime_orders": 12}


def test_no_key_is_401_and_a_bad_or_revoked_key_is_403(client, declared, api_key, use_redis_store):
    body = {"records": [{"visitor_id": ALICE, "traits": {"loyalty_tier": "gold"}}]}
    assert post(client, body).status_code == 401
    assert post(client, body, "not-a-key").json()["error"] == "invalid_api_key"
    from tailored.models import ApiKey

    revoke_api_keys(ApiKey.objects.all())
    assert post(client, body, api_key).status_code == 403
    assert not VisitorTraits.objects.exists()


def test_any_bad_record_answers_400_naming_index_key_and_reason_and_writes_nothing(client, declared, api_key, use_redis_store):
    response = post(client, {"records": [
        {"visitor_id": ALICE, "traits": {"loyalty_tier": "gold"}},
        {"visitor_id": BOB, "traits": {"loyalty_tier": "diamond", "shoe_size": 42}},
        {"user_id": 999999, "traits": {"newsletter": True}},
        {"visitor_id": "short", "traits": {}},
        {"visitor_id": ALICE, "user_id": 1, "traits": {}},
    ]}, api_key)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_records" and "nothing was stored" in body["message"]
    assert {"index": 1, "key": "loyalty_tier", "reason": "expected one of bronze, silver, gold, platinum, got 'diamond'"} in body["errors"]
    assert any(e["index"] == 1 and e["key"] == "shoe_size" and e["reason"].startswith("not a declared trait") for e in body["errors"])
    assert {"index": 2, "key": None, "reason": "no user has the id 999999"} in body["errors"]
    assert [e["index"] for e in body["errors"]].count(3) == 1 and [e["index"] for e in body["errors"]].count(4) == 1
    assert not VisitorTraits.objects.exists()
    assert conf.get_profile_store().get(ALICE, 0).traits == {}


def test_a_body_that_is_not_the_expected_json_is_400(client, declared, api_key):
    assert post(client, "{not json", api_key, raw=True).json()["error"] == "invalid_body"
    assert post(client, {"traits": {}}, api_key).status_code == 400


def test_too_many_records_or_bytes_is_413(client, declared, api_key, use_redis_store):
    records = [{"visitor_id": ALICE, "traits": {"lifetime_orders": i}} for i in range(MAX_RECORDS + 1)]
    assert post(client, {"records": records}, api_key).status_code == 413
    huge = {"records": [{"visitor_id": ALICE, "traits": {"account_type": "x" * (3 * 1024 * 1024)}}]}
    assert post(client, huge, api_key).json()["error"] == "too_large"
    assert not VisitorTraits.objects.exists()


def write_csv(tmp_path, text: str) -> str:
    path = tmp_path / "traits.csv"
    path.write_text(text)
    return str(path)


def run(path: str, *flags: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("tailored_import_traits", path, *flags, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


GOOD = f"visitor_id,loyalty_tier,lifetime_orders,newsletter\n{ALICE},gold,12,yes\n{BOB},,3,\n"
BAD = GOOD + f"{ALICE},diamond,many,maybe\nnot-an-id,gold,1,no\n"


def test_a_good_file_is_imported(tmp_path, declared, use_redis_store):
    out, _ = run(write_csv(tmp_path, GOOD))
    assert "imported 2 rows: 4 traits for 2 visitors" in out
    assert VisitorTraits.objects.get(visitor_id=ALICE).values == {"loyalty_tier": "gold", "lifetime_orders": 12, "newsletter": True}
    assert VisitorTraits.objects.get(visitor_id=BOB).values == {"lifetime_orders": 3}  # empty cells: not set
    assert conf.get_profile_store().get(BOB, 0).traits == {"lifetime_orders": 3}


def test_bad_rows_are_reported_by_line_and_nothing_is_written(tmp_path, declared, use_redis_store):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("tailored_import_traits", write_csv(tmp_path, BAD), stdout=out, stderr=err)
    lines = err.getvalue().splitlines()
    assert "line 4: lifetime_orders: expected a number, got 'many'" in lines
    assert "line 4: newsletter: expected true or false (or yes/no, 1/0), got 'maybe'" in lines
    assert "line 5: a visitor id is 32 lower-case hexadecimal characters, got 'not-an-id'" in lines
    assert "checked 4 rows: 2 valid, 2 invalid" in out.getvalue()
    assert not VisitorTraits.objects.exists()


def test_skip_invalid_writes_the_good_rows_and_dry_run_writes_none(tmp_path, declared, use_redis_store):
    path = write_csv(tmp_path, BAD)
    out, _ = run(path, "--skip-invalid", "--dry-run")
    assert "dry run: nothing was written" in out and not VisitorTraits.objects.exists()
    out, err = run(path, "--skip-invalid")
    assert "line 4: loyalty_tier: expected one of bronze, silver, gold, platinum, got 'diamond'" in err
    assert sorted(VisitorTraits.objects.values_list("visitor_id", flat=True)) == [ALICE, BOB]


def test_undeclared_columns_are_refused_before_any_row(tmp_path, declared):
    with pytest.raises(CommandError, match="not declared traits: shoe_size"):
        run(write_csv(tmp_path, f"visitor_id,shoe_size\n{ALICE},42\n"))


def test_progress_is_reported_every_thousand_rows(tmp_path, declared, use_redis_store):
    rows = "".join(f"{i:032x},{i}\n" for i in range(1, 2001))
    out, _ = run(write_csv(tmp_path, "visitor_id,lifetime_orders\n" + rows))
    assert "checked 1000 rows" in out and "checked 2000 rows" in out and "wrote 2000 rows" in out
    assert VisitorTraits.objects.count() == 2000


def test_a_batch_costs_the_same_few_queries_for_ten_or_a_thousand_records(client, declared, api_key, use_redis_store, django_assert_max_num_queries):
    post(client, {"records": [{"visitor_id": ALICE, "traits": {"lifetime_orders": 1}}]}, api_key)  # warms the key cache
    records = [{"visitor_id": f"{i:032x}", "traits": {"lifetime_orders": i}} for i in range(1, MAX_RECORDS + 1)]
    records[0]["visitor_id"] = ALICE  # an update among the inserts
    with django_assert_max_num_queries(12):
        response = post(client, {"records": records}, api_key)
    assert response.json()["visitors"] == MAX_RECORDS
    assert VisitorTraits.objects.count() == MAX_RECORDS
