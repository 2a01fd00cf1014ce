"""Context providers: facts derived from the request alone (never stored)."""

from .request import context_from_request

__all__ = ["context_from_request"]
