"""How a block finds its request and visitor: from the template context in SSR, from the
GraphQL resolve info on the headless path. Both end at `services.resolve_visitor` (through the
lazy `request.visitor`), so a preview audience set on the request applies to every block.
A block rendered without a context (`{{ page.body }}`) uses the request VisitorMiddleware serves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from tailored import conf
from tailored.core.types import Visitor
from tailored.middleware import current_request


def request_of(parent_context: Mapping[str, Any] | None) -> HttpRequest | None:
    request = (parent_context or {}).get("request")
    return request if request is not None else current_request()


def visitor_of_request(request: HttpRequest | None) -> Visitor | None:
    """The request's visitor; None without a request or with personalization off."""
    if request is None or not conf.get("ENABLED"):
        return None
    return getattr(request, "visitor", None)


def visitor_of(parent_context: Mapping[str, Any] | None) -> Visitor | None:
    return visitor_of_request(request_of(parent_context))


def visitor_of_info(info: Any) -> Visitor | None:
    """The visitor of a GraphQL resolve info (its context is the request)."""
    return visitor_of_request(getattr(info, "context", None))
