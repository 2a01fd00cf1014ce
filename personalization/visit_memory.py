"""What a profile remembers of the visit (issue 18 item 1), with personalization consent: the
visit's landing page and the query parameters it arrived with that a rule remembers
(`visit.query.<name>`). Nothing else of the address is kept: the parameters are filtered against
the enabled rules when stored, so an `?email=` in a link never reaches the profile.

tracker.js sends the remembered parameters with the first page view (`keep`, named on its tag by
`data-tl-keep`); the stores keep them, with the landing path, until the next visit starts."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import parse_qsl, urlencode

from tailored.core.fields import VISIT_QUERY_PREFIX

MAX_KEPT = 10
MAX_VALUE_CHARS = 200
MAX_PATH_CHARS = 300
_NONE: Mapping[str, str] = MappingProxyType({})


def remembered_names() -> frozenset[str]:
    """The parameters the enabled rules remember for the visit."""
    from tailored.segments import segment_cache

    fields = segment_cache.fields()
    return frozenset(name[len(VISIT_QUERY_PREFIX):] for name in fields if name.startswith(VISIT_QUERY_PREFIX))


def kept_query(raw: str | None, names: frozenset[str] | None = None) -> str:
    """`raw` ("promo=spring&email=x") down to the remembered parameters, encoded again."""
    if not raw:
        return ""
    names = remembered_names() if names is None else names
    kept: dict[str, str] = {}
    for name, value in parse_qsl(raw[:2000], keep_blank_values=False):
        if name in names and name not in kept and len(kept) < MAX_KEPT:
            kept[name] = value[:MAX_VALUE_CHARS]
    return urlencode(kept)


def parse_kept(stored: str | None) -> Mapping[str, str]:
    """A stored `visit_query` back as a mapping."""
    if not stored:
        return _NONE
    return MappingProxyType(dict(parse_qsl(stored, keep_blank_values=False)))


def landing_fields(landing: tuple[str | None, str | None] | None) -> dict[str, str]:
    """The profile hash fields a new visit writes: both always, empty when its first page view
    is not in the batch, so that the last visit's are forgotten."""
    path, raw = landing if landing is not None else (None, None)
    return {"visit_landing": (path or "")[:MAX_PATH_CHARS], "visit_query": kept_query(raw)}
