"""VisitorMiddleware: the lazy `request.visitor`, and the current request for blocks rendered
without a template context."""

from __future__ import annotations

from contextvars import ContextVar

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from . import caching, conf
from .api import dataloaders
from .services import resolve_visitor, set_consent, set_visitor_cookie
from .site_cache import attach_site

# `{{ page.body }}` renders each block with no context at all (StreamValue.__str__), so a block
# finds the visitor here when its context has no request (issue 13). Set for the request only.
_current_request: ContextVar[HttpRequest | None] = ContextVar("tailored_current_request", default=None)


def current_request() -> HttpRequest | None:
    """The request VisitorMiddleware is serving in this thread or task, else None."""
    return _current_request.get()


class VisitorMiddleware:
    """Attaches a lazy `request.visitor`; nothing is computed for requests that never touch it.

    A Wagtail page is marked public, per audience key, or private by what its decisions read
    (tailored.caching); any other response that read the visitor or their consent is private.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.visitor = SimpleLazyObject(lambda: resolve_visitor(request))
        token = _current_request.set(request)
        try:
            with dataloaders.request_scope():  # products, renditions and segments loaded once per request
                response = self.get_response(request)
        finally:
            _current_request.reset(token)
        _apply_cookie_changes(request, response)
        new_id = getattr(request, "_tailored_new_visitor_id", None)
        # Set at login (the user's pseudonymous id) or for a consenting visitor without a valid
        # signed id; never over a cookie this response already sets or deletes (consent, erasure).
        if new_id and conf.get("VISITOR_COOKIE") not in response.cookies:
            set_visitor_cookie(request, response, new_id)
        caching.apply(request, response)  # after the cookies: a response setting one is private
        return response

    def process_view(self, request, view_func, view_args, view_kwargs) -> None:
        """A Wagtail page's Site from memory (tailored.site_cache); only for Wagtail's serve view,
        so requests that never look a Site up (events, the API) never pay for one."""
        from wagtail.views import serve  # not at import: this module loads before the models

        if view_func is serve:
            attach_site(request)


def _apply_cookie_changes(request, response) -> None:
    """Cookie changes asked for where no response is at hand (GraphQL mutations)."""
    granted = getattr(request, "_tailored_consent_update", None)
    if granted is not None:
        set_consent(request, response, granted)
    if getattr(request, "_tailored_forget", False):
        response.delete_cookie(conf.get("VISITOR_COOKIE"), samesite="Lax")
        response.delete_cookie(conf.get("CONSENT_COOKIE"), samesite="Lax")
