from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.functional import SimpleLazyObject

from .services import resolve_visitor


class VisitorMiddleware:
    """Attaches a lazy `request.visitor`; nothing is computed for requests that never touch it.

    A response that read the visitor (or just their consent, for the banner) may differ per
    visitor, so it is marked private and varies on its inputs (cookies, User-Agent for the device).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.visitor = SimpleLazyObject(lambda: resolve_visitor(request))
        response = self.get_response(request)
        if hasattr(request, "_tailored_visitor") or hasattr(request, "_tailored_consent"):
            patch_vary_headers(response, ("Cookie", "User-Agent"))
            patch_cache_control(response, private=True)
        return response
