"""Visitor-facing views: the consent answer (an HTML form that works without JavaScript, and
JSON for tracker.js / a consent-management platform)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tailored.events.json_body import JsonBodyError, parse_json
from tailored.services import CONSENT_CATEGORIES, set_consent

CHOICES = {"accept": CONSENT_CATEGORIES, "decline": ()}


@require_POST
def consent(request: HttpRequest) -> HttpResponse:
    if request.content_type == "application/json":
        return _consent_json(request)
    choice = request.POST.get("choice")
    if choice not in CHOICES:
        return HttpResponse("choice must be 'accept' or 'decline'", status=400, content_type="text/plain")
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    response = HttpResponseRedirect(target, status=303)
    set_consent(request, response, CHOICES[choice])
    return response


def _consent_json(request: HttpRequest) -> JsonResponse:
    try:
        body = parse_json(request.body)
    except JsonBodyError as error:
        return JsonResponse(error.as_json(), status=400)
    if not isinstance(body, dict) or not all(isinstance(body.get(c, False), bool) for c in CONSENT_CATEGORIES):
        return JsonResponse(
            {"error": "invalid_consent", "message": f"expected booleans for {', '.join(CONSENT_CATEGORIES)}"},
            status=400,
        )
    granted = [c for c in CONSENT_CATEGORIES if body.get(c)]
    response = JsonResponse({"granted": granted})
    set_consent(request, response, granted)
    return response
