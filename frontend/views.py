"""Visitor-facing views: the consent answer (an HTML form that works without JavaScript, and
JSON for tracker.js / a consent-management platform) and the privacy centre, where a visitor
changes their choice, downloads what is held about them and erases it (issue 15 item 6).

None of them takes a CSRF token: a token needs the `csrftoken` cookie, and no cookie but the
consent answer may be written before consent (issue 15 item 4). Instead, as the events API and
GraphQL do (`tailored.api.same_site`), they refuse what the browser marks as sent by another site."""

from __future__ import annotations

import json

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from tailored import conf
from tailored.api.same_site import is_cross_site
from tailored.erasure import erase_or_queue, export_visitor
from tailored.events.json_body import JsonBodyError, parse_json
from tailored.services import (
    CONSENT_CATEGORIES,
    data_subject_id,
    forget_visitor_cookies,
    resolve_visitor,
    set_consent,
)
from tailored.views import declared_length

from .partials import STYLESHEET
from .privacy import PRIVACY_CENTRE_FLAG, PRIVACY_CENTRE_TEMPLATE, privacy_centre_context

CHOICES = ("accept", "decline", "save")
CROSS_SITE = "refused: sent by another site"
CONSENT_MAX_BYTES = 16 * 1024  # the form (choice, categories, next) or the JSON answer: a few hundred bytes


def _cross_site_refusal(request: HttpRequest) -> HttpResponse | None:
    if is_cross_site(request):
        return HttpResponse(CROSS_SITE, status=403, content_type="text/plain")
    return None


@csrf_exempt
@require_POST
def consent(request: HttpRequest) -> HttpResponse:
    """POST /consent/: the banner's or the privacy centre's answer. `choice` is accept (every
    category), decline (none) or save (the categories checked). Under GPC / DNT the answer is
    recorded as declined and the visitor lands on the privacy centre, which says why."""
    if refusal := _cross_site_refusal(request) or _body_refusal(request):
        return refusal
    if request.content_type == "application/json":
        return _consent_json(request)
    try:
        choice = request.POST.get("choice")
    except (RequestDataTooBig, TooManyFieldsSent) as error:  # Django's limits: an HTML 400 otherwise
        return _refused(request, "invalid_body", f"the form is not one this page sends: {error}", 400)
    if choice not in CHOICES:
        return HttpResponse("choice must be 'accept', 'decline' or 'save'", status=400, content_type="text/plain")
    asked = {"accept": CONSENT_CATEGORIES, "decline": ()}.get(choice)
    if asked is None:
        asked = [category for category in CONSENT_CATEGORIES if request.POST.get(category)]
    response = HttpResponseRedirect(_next(request), status=303)
    answer = set_consent(request, response, asked)
    if answer.reason:
        response["Location"] = f"{reverse('tailored_frontend:privacy')}?notice={answer.reason}"
    return response


def _body_refusal(request: HttpRequest) -> HttpResponse | None:
    """A Content-Length that is not a number, or past CONSENT_MAX_BYTES: answered before the body
    is read (in the request's own format, JSON or text)."""
    try:
        declared = declared_length(request)
    except ValueError as error:
        return _refused(request, "invalid_content_length", str(error), 400)
    if declared > CONSENT_MAX_BYTES:
        return _refused(request, "body_too_large", f"the body is {declared} bytes; the limit is {CONSENT_MAX_BYTES}", 413)
    return None


def _refused(request: HttpRequest, code: str, message: str, status: int) -> HttpResponse:
    if request.content_type == "application/json":
        return JsonResponse({"error": code, "message": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain")


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or "/"
    return target if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) else "/"


def _consent_json(request: HttpRequest) -> JsonResponse:
    try:
        body = parse_json(request.body)
    except JsonBodyError as error:
        return JsonResponse(error.as_json(), status=400)
    except RequestDataTooBig:  # no Content-Length (chunked), and past Django's limit
        return _refused(request, "body_too_large", f"the body is larger than {CONSENT_MAX_BYTES} bytes", 413)
    if not isinstance(body, dict) or not all(isinstance(body.get(c, False), bool) for c in CONSENT_CATEGORIES):
        return JsonResponse(
            {"error": "invalid_consent", "message": f"expected booleans for {', '.join(CONSENT_CATEGORIES)}"},
            status=400,
        )
    response = JsonResponse({})  # set_consent writes the cookies on it; the body says what was recorded
    answer = set_consent(request, response, [c for c in CONSENT_CATEGORIES if body.get(c)])
    response.content = json.dumps(answer.as_json())
    return response


@require_GET
def privacy_centre(request: HttpRequest) -> HttpResponse:
    """GET /privacy-centre/: the visitor's choice, what each category means, what is stored on their
    device, and buttons to change the choice, download their data and erase it."""
    setattr(request, PRIVACY_CENTRE_FLAG, True)
    context = {"privacy": privacy_centre_context(request), "stylesheet": static(STYLESHEET)}
    return render(request, PRIVACY_CENTRE_TEMPLATE, context)


@require_GET
def privacy_data(request: HttpRequest) -> HttpResponse:
    """GET /privacy-centre/data: everything held about the visitor, as a JSON download (audited)."""
    if refusal := _cross_site_refusal(request):
        return refusal
    visitor_id = data_subject_id(request)  # also when Sec-GPC/DNT now withholds consent
    if visitor_id is None:
        return HttpResponseRedirect(f"{reverse('tailored_frontend:privacy')}?notice=nothing_held", status=303)
    response = JsonResponse(export_visitor(visitor_id, resolve_visitor(request).consent), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@csrf_exempt
@require_POST
def privacy_erase(request: HttpRequest) -> HttpResponse:
    """POST /privacy-centre/erase: erase everything held about the visitor (queued while the store is
    down) and forget their id, time-zone hint and answer (as DELETE /api/me does) and the CSRF
    cookie a page shown after consent may have set."""
    if refusal := _cross_site_refusal(request):
        return refusal
    visitor_id = data_subject_id(request)  # also when Sec-GPC/DNT now withholds consent
    notice = "nothing_held"
    if visitor_id is not None:
        notice = "erased" if erase_or_queue(visitor_id) is not None else "erasure_queued"
    response = HttpResponseRedirect(f"{reverse('tailored_frontend:privacy')}?notice={notice}", status=303)
    forget_visitor_cookies(request, response)
    response.delete_cookie(conf.get("CONSENT_COOKIE"), samesite="Lax")
    return response
