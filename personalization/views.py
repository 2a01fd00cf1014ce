"""HTTP endpoints of the event pipeline and of the visitor's data rights."""

from __future__ import annotations

import functools
import logging
import time

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tailored import conf, redis_guard

from .api.same_site import is_cross_site
from .erasure import erase_visitor, export_visitor
from .events.schema import BatchError, read_batch, validate_events
from .insights import metrics
from .services import (
    UNTRUSTED_PURCHASE,
    UNTRUSTED_PURCHASE_MESSAGE,
    data_subject_id,
    record_events,
    resolve_visitor,
    untrusted_purchases,
)

logger = logging.getLogger(__name__)

# How soon a client may retry while Redis is unavailable: past the breaker's cool-down.
RETRY_AFTER_SECONDS = 5


def _error(code: str, message: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": code, "message": message, **extra}, status=status)


def _cross_site(request: HttpRequest) -> JsonResponse | None:
    """The refusal of a request another site sent; the same check as GraphQL's (`tailored.api.same_site`)."""
    return _error("cross_site", "accepted from this site only", 403) if is_cross_site(request) else None


def _refusal(request: HttpRequest) -> JsonResponse | None:
    """Why this request may not send events, if it may not."""
    if refusal := _cross_site(request):
        return refusal
    visitor = resolve_visitor(request)
    if visitor.context.device == "bot":
        return _error("not_tracked", "automated clients are not tracked", 403)
    if visitor.id is None:
        return _error("consent_required", "nothing is stored or held without consent", 403)
    return None


def _data_subject(request: HttpRequest) -> tuple[str, None] | tuple[None, JsonResponse]:
    """The id whose data this request may export or erase, or why none. Neither consent withdrawn
    by Sec-GPC/DNT nor a bot-like User-Agent takes a visitor's rights over what is already held."""
    if refusal := _cross_site(request):
        return None, refusal
    visitor_id = data_subject_id(request)
    if visitor_id is None:
        return None, _error("consent_required", "nothing is stored or held without consent", 403)
    return visitor_id, None


def _unavailable_as_503(view):
    """Redis down or hung: a JSON 503 with Retry-After and a stable code, never an HTML 500.
    Nothing was stored, so the client keeps the batch (tracker.js retries it)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
        try:
            return view(request, *args, **kwargs)
        except redis_guard.OUTAGE as error:
            logger.warning("%s answered 503: Redis unavailable (%s)", request.path, error)
            response = _error("unavailable", "temporarily unavailable; retry later", 503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response

    return wrapper


@csrf_exempt
@require_POST
@_unavailable_as_503
def events(request: HttpRequest) -> JsonResponse:
    """POST /api/events: a JSON batch {"events": [...]}. 202 when every event was accepted, 207
    when some were rejected (the rest are stored), 400 when none could be, 429 past the rate limit."""
    refusal = _refusal(request)
    if refusal:
        return refusal
    try:
        max_bytes = conf.get("MAX_BATCH_BYTES")
        items = read_batch(_body(request, max_bytes), conf.get("MAX_BATCH_EVENTS"), max_bytes)
    except BatchError as error:
        metrics.count_refused(error.code)
        return JsonResponse(error.as_json(), status=400)
    if untrusted := untrusted_purchases(request, items):  # a browser's purchase: refused whole, nothing stored
        rejected = [{"index": i, "field": "type", "reason": UNTRUSTED_PURCHASE_MESSAGE} for i in untrusted]
        return _error(UNTRUSTED_PURCHASE, UNTRUSTED_PURCHASE_MESSAGE, 403, rejected=rejected)
    valid, rejections = validate_events(items, time.time())
    metrics.count_ingested(len(valid), rejections)  # /metrics (issue 17)
    rejected = [r.as_json() for r in rejections]
    if not valid:
        return _error("invalid_events", "no event in the batch is valid", 400, rejected=rejected)
    result = record_events(resolve_visitor(request), valid)
    if result.rate_limited:
        response = _error("rate_limited", "too many events; retry in a minute", 429)
        response["Retry-After"] = "60"
        return response
    body = {"accepted": len(valid), "stored": len(result.stored), "duplicates": result.duplicates, "rejected": rejected}
    return JsonResponse(body, status=207 if rejected else 202)


def _body(request: HttpRequest, max_bytes: int) -> bytes:
    """The request's body, or BatchError("body_too_large") as JSON when it says it is longer than
    the limit: before Django reads it, which past DATA_UPLOAD_MAX_MEMORY_SIZE answers an HTML 400.
    BatchError("invalid_content_length") when that header is not a number."""
    try:
        declared = declared_length(request)
    except ValueError as error:
        raise BatchError("invalid_content_length", str(error)) from None
    if declared > max_bytes:
        raise BatchError("body_too_large", f"the body is {declared} bytes; the limit is {max_bytes}")
    try:
        return request.body
    except RequestDataTooBig:  # a MAX_BATCH_BYTES above Django's own limit
        raise BatchError("body_too_large", f"the body is {declared} bytes; Django's DATA_UPLOAD_MAX_MEMORY_SIZE is lower") from None


def declared_length(request: HttpRequest) -> int:
    """The body's length as its Content-Length header says (0 without one), read before the body:
    a JSON endpoint checks its limit with it, since request.body past Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE answers an HTML 400, and with a header that is not a number
    ("abc", "1e3") raises ValueError, a 500. ValueError here too, with a message to answer."""
    raw = request.META.get("CONTENT_LENGTH") or ""
    if not raw:
        return 0
    digits = raw.strip()
    # ASCII digits only: int() alone also takes "-1", "+1", "1_0" and other scripts' digits, and
    # refuses more than 4,300 digits.
    if digits.isascii() and digits.isdigit() and len(digits) <= 4000:
        return int(digits)
    raise ValueError(f"the Content-Length header is not a number of bytes: {raw[:40]!r}")


@require_GET
@_unavailable_as_503
def my_data(request: HttpRequest) -> JsonResponse:
    """GET /api/me/data: everything held about the requesting visitor, as JSON."""
    visitor_id, refusal = _data_subject(request)
    if refusal:
        return refusal
    response = JsonResponse(export_visitor(visitor_id, resolve_visitor(request).consent))
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@csrf_exempt
@require_http_methods(["DELETE"])
@_unavailable_as_503
def erase_me(request: HttpRequest) -> JsonResponse:
    """DELETE /api/me: erase the profile, the events and the assignments; forget the id."""
    visitor_id, refusal = _data_subject(request)
    if refusal:
        return refusal
    erased = erase_visitor(visitor_id)
    response = JsonResponse({"erased": erased})
    response.delete_cookie(conf.get("VISITOR_COOKIE"), samesite="Lax")
    response.delete_cookie(conf.get("CONSENT_COOKIE"), samesite="Lax")
    return response
