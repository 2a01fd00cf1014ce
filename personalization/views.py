"""HTTP endpoints of the event pipeline."""

from __future__ import annotations

import time

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from personalization import conf

from .events.schema import BatchError, parse_batch
from .services import record_events, resolve_visitor


def _is_cross_site(request: HttpRequest) -> bool:
    # sendBeacon cannot carry a CSRF header, so the endpoint is CSRF-exempt and instead refuses
    # anything a browser marks as coming from another site.
    if request.META.get("HTTP_SEC_FETCH_SITE", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.META.get("HTTP_ORIGIN")
    return bool(origin) and origin != f"{request.scheme}://{request.get_host()}"


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> JsonResponse:
    """POST /api/events: a JSON batch {"events": [...]}; all stored (202) or none (400)."""
    if _is_cross_site(request):
        return JsonResponse({"error": "cross_site", "message": "events are accepted from this site only"}, status=403)
    visitor = resolve_visitor(request)
    if visitor.context.device == "bot":
        return JsonResponse({"error": "not_tracked", "message": "automated clients are not tracked"}, status=403)
    if visitor.id is None:
        return JsonResponse(
            {"error": "consent_required", "message": "no events are stored without consent"}, status=403
        )
    try:
        batch = parse_batch(
            request.body, time.time(), conf.get("MAX_BATCH_EVENTS"), conf.get("MAX_BATCH_BYTES")
        )
    except BatchError as error:
        return JsonResponse(error.as_json(), status=400)
    stored = record_events(visitor, batch)
    return JsonResponse({"accepted": stored}, status=202)
