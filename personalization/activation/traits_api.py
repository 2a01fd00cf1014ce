"""POST /api/traits (issue 20 item 4): a CRM sends declared traits for many visitors at once,
authenticated with an API key (`X-Tailored-Key`, as server-to-server visitors are).

    {"records": [{"user_id": 42, "traits": {"loyalty_tier": "gold", "lifetime_orders": 12}},
                 {"visitor_id": "0f3c...", "traits": {"newsletter": null}}]}

Every record is checked before anything is written: one bad record answers 400 with every
problem as {"index", "key", "reason"} and nothing is stored. 401 without a key, 403 with a key
that is not active, 413 past MAX_RECORDS or MAX_BODY_BYTES, 503 with the profile store down;
400 for a body that is not {"records": [...]} (`invalid_body`), JSON the safe parser refuses (its
code: `json_too_deep`, `duplicate_key`, `number_out_of_range`) or a Content-Length that is not a
number (`invalid_content_length`); 200 with counts otherwise."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tailored import redis_guard
from tailored.events.json_body import JsonBodyError, parse_json
from tailored.server_visitors import KEY_HEADER, verify_api_key
from tailored.views import declared_length

from .models import Trait
from .traits import (
    TraitError,
    TraitProblem,
    declared_traits,
    validate_traits,
    visitor_id_of,
    write_traits,
)

logger = logging.getLogger(__name__)
MAX_RECORDS = 1000
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_USER_ID = 2**63 - 1  # a user id past 64 bits is no user's (SQLite raises OverflowError for it)


def _error(code: str, message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "message": message, **extra}, status=status)


@csrf_exempt
@require_POST
def traits_view(request: HttpRequest) -> JsonResponse:
    """Store the records' traits, all or none (see the module's docstring)."""
    raw_key = request.META.get(KEY_HEADER, "").strip()
    if not raw_key:
        return _error("api_key_required", "send an API key in the X-Tailored-Key header", 401)
    if verify_api_key(raw_key) is None:
        return _error("invalid_api_key", "the API key is not valid or was revoked", 403)
    try:
        length = declared_length(request)
    except ValueError as error:
        return _error("invalid_content_length", str(error), 400)
    if length > MAX_BODY_BYTES:
        return _error("too_large", f"the body may be at most {MAX_BODY_BYTES} bytes", 413)
    try:
        records = _records(request.body)
    except RequestDataTooBig:  # a DATA_UPLOAD_MAX_MEMORY_SIZE below MAX_BODY_BYTES
        return _error("too_large", "the body is larger than this site's DATA_UPLOAD_MAX_MEMORY_SIZE", 413)
    except JsonBodyError as error:  # the safe parser's codes (json_too_deep, duplicate_key, ...)
        return _error("invalid_body" if error.code == "malformed_json" else error.code, error.message, 400)
    except ValueError as error:
        return _error("invalid_body", str(error), 400)
    if len(records) > MAX_RECORDS:
        return _error("too_many_records", f"at most {MAX_RECORDS} records per request, got {len(records)}", 413)
    checked, errors = check_records(records)
    if errors:
        message = f"{len(errors)} problem(s) in the records; nothing was stored"
        return _error("invalid_records", message, 400, errors=errors)
    try:
        counts = write_traits(checked)
    except redis_guard.OUTAGE as error:
        logger.warning("traits not stored: the profile store is unavailable (%s)", error)
        return _error("unavailable", "temporarily unavailable; nothing was stored, retry later", 503)
    return JsonResponse({"records": len(records), **counts.as_json()})


def _records(body: bytes) -> list[Any]:
    data = parse_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ValueError('expected an object {"records": [...]}')
    return data["records"]


def check_records(
    records: list[Any], declared: Mapping[str, Trait] | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """(visitor id, checked traits) of every record, and every problem as {index, key, reason}.
    Two queries whatever the number of records: the declarations and the users named."""
    declared = declared_traits() if declared is None else declared
    existing_users = _existing_users(records)
    checked: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        try:
            visitor_id = _record_visitor(record, existing_users)
            checked.append((visitor_id, validate_traits(record.get("traits"), declared)))
        except TraitError as error:
            errors += [{"index": index, **problem.as_json()} for problem in error.problems]
    return checked, errors


def _record_visitor(record: Any, existing_users: set[str]) -> str:
    from tailored.services import user_visitor_id

    def refuse(reason: str) -> TraitError:
        return TraitError([TraitProblem(None, reason)])

    if not isinstance(record, dict):
        raise refuse('a record is an object {"visitor_id" or "user_id": ..., "traits": {...}}')
    unexpected = set(record) - {"visitor_id", "user_id", "traits"}
    if unexpected:
        raise refuse(f"unexpected field {sorted(unexpected)[0]!r}; a record has visitor_id or user_id, and traits")
    if ("visitor_id" in record) == ("user_id" in record):
        raise refuse("name the visitor with exactly one of visitor_id or user_id")
    if "visitor_id" in record:
        if not isinstance(record["visitor_id"], str):
            raise refuse("visitor_id must be text: 32 lower-case hexadecimal characters")
        return visitor_id_of(record["visitor_id"])
    user_id = _user_pk(record["user_id"])
    if user_id is None or user_id not in existing_users:
        raise refuse(f"no user has the id {record['user_id']!r}")
    return user_visitor_id(user_id)


def _user_pk(value: Any) -> str | None:
    """A user id as the pk field reads it (42 or "42"), as text; None when it cannot be one."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        pk = get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return None
    if isinstance(pk, int) and not -MAX_USER_ID - 1 <= pk <= MAX_USER_ID:
        return None  # as PostgreSQL answers: no row has it
    return str(pk)


def _existing_users(records: list[Any]) -> set[str]:
    """The user ids the records name that exist (one query)."""
    named = {pk for r in records if isinstance(r, dict) and "user_id" in r and (pk := _user_pk(r["user_id"])) is not None}
    if not named:
        return set()
    return {str(pk) for pk in get_user_model().objects.filter(pk__in=named).values_list("pk", flat=True)}
