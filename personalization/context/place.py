"""Where a request is and where it came from, for rules (issue 18 item 1): this page's path, its
query parameters, the referring URL and host, the landing page of the visit, and the parameters
remembered for the visit.

Everything is bounded, so a hostile URL costs nothing: at most MAX_PARAMETERS parameters, names
that rules can name (fields.PARAMETER_NAME), values of at most MAX_VALUE_CHARS.

Remembering without consent, and without a cookie: the browser's same-site Referer carries the
previous page's full URL (the default referrer policy, strict-origin-when-cross-origin, keeps
the path and query for same-origin navigation). So a parameter the visitor landed with is still
known on the next page. That is one step: nothing is stored, so on the page after it the
parameter is gone. With consent, the profile keeps the visit's landing page and parameters
(see tailored.visit_memory) for the whole visit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tailored.core.fields import PARAMETER_NAME

MAX_PARAMETERS = 20
MAX_VALUE_CHARS = 200
MAX_QUERY_CHARS = 4096
MAX_URL_CHARS = 500
MAX_PATH_CHARS = 300
_NONE: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Place:
    path: str | None = None
    query: Mapping[str, str] = field(default_factory=lambda: _NONE)
    referrer: str | None = None
    referrer_host: str | None = None
    same_site_referrer: bool = False
    referrer_query: Mapping[str, str] = field(default_factory=lambda: _NONE)  # the same-site referrer's parameters (one step back)

    def context_fields(self) -> dict[str, Any]:
        """The Context fields a place sets (browser requests and headless visitors alike)."""
        return {
            "path": self.path,
            "query": self.query,
            "session_query": self.referrer_query,
            "referrer": self.referrer,
            "referrer_host": self.referrer_host,
            # A visit starts here unless the visitor came from another page of this site.
            "landing_page": None if self.same_site_referrer else self.path,
        }


def query_parameters(query_string: str) -> Mapping[str, str]:
    """The first value of each parameter a rule could name, bounded (see the module doc)."""
    if not query_string:
        return _NONE
    # Only the first few pairs are looked at, however many a hostile URL holds.
    return _parse("&".join(query_string[:MAX_QUERY_CHARS].split("&", 4 * MAX_PARAMETERS)[: 4 * MAX_PARAMETERS]))


@lru_cache(maxsize=1024)
def _parse(query_string: str) -> Mapping[str, str]:
    found: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        if name not in found and PARAMETER_NAME.match(name):
            found[name] = value[:MAX_VALUE_CHARS]
            if len(found) == MAX_PARAMETERS:
                break
    return MappingProxyType(found)


def place_of(path: str, query_string: str, referer: str, own_hosts: frozenset[str]) -> Place:
    """The request's place; `own_hosts` are this site's host names (without "www.")."""
    query = query_parameters(query_string)
    referer = referer.strip()[:MAX_URL_CHARS]
    if not referer:
        return Place(path=path[:MAX_PATH_CHARS] or None, query=query)
    try:
        parts = urlsplit(referer)
        host = (parts.hostname or "").rstrip(".").removeprefix("www.") or None
    except ValueError:
        return Place(path=path[:MAX_PATH_CHARS] or None, query=query, referrer=referer)
    same_site = host is not None and host in own_hosts
    return Place(
        path=path[:MAX_PATH_CHARS] or None,
        query=query,
        referrer=referer,
        referrer_host=host,
        same_site_referrer=same_site,
        referrer_query=query_parameters(parts.query) if same_site else _NONE,
    )
