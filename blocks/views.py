"""The onboarding survey's answer: the visitor's favourite categories, saved to their profile.

An HTML form post (works without JavaScript) redirects back to the page; a JSON post gets JSON.
The profile store saves it through `set_preferences(visitor_id, categories)` (the `m` hash in
Redis, the memory record's `preferences`); until a backend has that method the view answers 501.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from tailored import conf
from tailored.events.json_body import JsonBodyError, parse_json
from tailored.products import category_model
from tailored.services import resolve_visitor

from .engagement import SURVEY_DONE_PARAM

MAX_PREFERENCES = 10


@require_POST
def save_preferences(request: HttpRequest) -> HttpResponse:
    wants_json = request.content_type == "application/json"
    chosen = _chosen(request, wants_json)
    if chosen is None:
        return _error(wants_json, 400, "malformed_json", "the body is not valid JSON")
    model = category_model()
    live = set(model.objects.live().values_list("slug", flat=True)) if model is not None else set()
    categories = [slug for slug in dict.fromkeys(chosen) if slug in live][:MAX_PREFERENCES]
    if not categories:
        return _error(wants_json, 400, "no_categories", "pick at least one category")
    visitor = resolve_visitor(request)
    if visitor.id is None or not visitor.consent.allows_profile:
        return _error(wants_json, 403, "no_consent", "preferences are saved only for visitors who accepted personalization")
    store = conf.get_profile_store()
    if not hasattr(store, "set_preferences"):
        return _error(wants_json, 501, "unsupported", "this profile store cannot save preferences yet")
    store.set_preferences(visitor.id, categories)
    if wants_json:
        return JsonResponse({"preferences": categories})
    return HttpResponseRedirect(_back(request), status=303)


def _chosen(request: HttpRequest, wants_json: bool) -> list[str] | None:
    if not wants_json:
        return [str(c)[:64] for c in request.POST.getlist("category")]
    try:
        body = parse_json(request.body)
    except JsonBodyError:
        return None
    categories = body.get("categories") if isinstance(body, dict) else None
    return [str(c)[:64] for c in categories] if isinstance(categories, list) else []


def _back(request: HttpRequest) -> str:
    """The page the survey was on, marked so the block thanks the visitor."""
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = "/"
    parts = urlsplit(target)
    query = "&".join(p for p in (parts.query, f"{SURVEY_DONE_PARAM}=saved") if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, "tl-survey"))


def _error(wants_json: bool, status: int, code: str, message: str) -> HttpResponse:
    if wants_json:
        return JsonResponse({"error": code, "message": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain")
