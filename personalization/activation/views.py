"""POST /api/identify: who the visitor is, after a form (issue 20 item 3; tracker.js's
`tailored.identify(email)` calls it)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tailored.events.json_body import JsonBodyError, parse_json
from tailored.services import identify as identify_visitor
from tailored.services import resolve_visitor
from tailored.views import _error, _refusal, _unavailable_as_503, declared_length

from .identity import IdentityError

MAX_BODY_BYTES = 2048


@csrf_exempt
@require_POST
@_unavailable_as_503
def identify(request: HttpRequest) -> JsonResponse:
    """{"email": "..."} -> 200 {"identified": true, "email_kept": <marketing granted>}; 403 without
    consent (nothing stored), 400 for a body or address that is not one, 413 past 2 KB."""
    if refusal := _refusal(request):
        return refusal
    try:  # the header, before request.body: past DATA_UPLOAD_MAX_MEMORY_SIZE Django answers an HTML 400
        declared = declared_length(request)
    except ValueError as error:
        return _error("invalid_content_length", str(error), 400)
    if declared > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        return _error("too_large", f"the body must be at most {MAX_BODY_BYTES} bytes", 413)
    try:
        body = parse_json(request.body)
    except JsonBodyError as error:
        return JsonResponse(error.as_json(), status=400)
    if not isinstance(body, dict) or set(body) - {"email"}:
        return _error("invalid_body", 'expected {"email": "<address>"} and nothing else', 400)
    visitor = resolve_visitor(request)
    try:
        identify_visitor(visitor, body.get("email"))
    except IdentityError as error:
        return _error("invalid_email", str(error), 400)
    return JsonResponse({"identified": True, "email_kept": visitor.consent.allows_marketing})
