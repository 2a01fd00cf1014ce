"""Facts about the visitor's account and the site's own facts, for rules (issue 18 item 2).

Both are read only when an enabled segment's rule names them: reading `request.user` opens the
session, which costs a query and makes Django add `Vary: Cookie` to the response, so a site whose
rules never ask about accounts keeps its pages cacheable.

A site adds facts of its own with a Wagtail hook:

    @hooks.register("register_tailored_rule_field")
    def add_fields(register):
        register("plan", "text", lambda request: request.user.profile.plan if request.user.is_authenticated else None,
                 label="Subscription plan", choices=("free", "pro"))

The fact is then `site.plan` in rules and in the builder. A reader that raises counts as "no
value" (logged), never as a failed page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from django.http import HttpRequest

from tailored.core.fields import SITE_PREFIX, site_field

logger = logging.getLogger(__name__)
USER_PREFIX = "user."
SiteReader = Callable[[HttpRequest], Any]
SITE_READERS: dict[str, SiteReader] = {}
_NONE: Mapping[str, Any] = MappingProxyType({})


def register_rule_field(
    name: str, kind: str, read: SiteReader, label: str = "", choices: tuple[str, ...] = (), help: str = ""
) -> None:
    """Add the fact `site.<name>` (kind: number, text, flag, texts or time) read from the request."""
    if not callable(read):
        raise TypeError(f"register_tailored_rule_field({name!r}): read must be a function of the request")
    site_field(name, kind, label, tuple(choices), help)
    SITE_READERS[name] = read


def _fields_read() -> frozenset[str]:
    from tailored.segments import segment_cache

    return segment_cache.fields()


def user_facts(request: HttpRequest, now: float) -> dict[str, Any]:
    """logged_in, is_staff, user_groups and account_age_days, when a rule reads a user.* fact."""
    fields = _fields_read()
    if not any(name.startswith(USER_PREFIX) for name in fields):
        return {}
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    joined = getattr(user, "date_joined", None)
    facts: dict[str, Any] = {
        "logged_in": True,
        "is_staff": bool(getattr(user, "is_staff", False)),
        "account_age_days": max(0.0, (now - joined.timestamp()) / 86400) if joined else None,
    }
    if "user.groups" in fields and hasattr(user, "groups"):
        facts["user_groups"] = tuple(user.groups.values_list("name", flat=True))
    return facts


def site_facts(request: HttpRequest) -> Mapping[str, Any]:
    """The registered site facts the enabled rules read, by name."""
    if not SITE_READERS:
        return _NONE
    wanted = [name[len(SITE_PREFIX):] for name in _fields_read() if name.startswith(SITE_PREFIX)]
    facts = {}
    for name in wanted:
        read = SITE_READERS.get(name)
        if read is None:
            continue
        try:
            facts[name] = read(request)
        except Exception:  # a site's reader must not fail the page
            logger.exception("site rule field %r could not be read", name)
    return MappingProxyType(facts)
