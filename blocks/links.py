"""Where a block's button or link may lead: one rule for every link field of the library.

A link is an http(s) URL with a host, a path of this site (/...), a place on the page (#...),
or a mailto: or tel: link. Anything else (javascript:, data:, vbscript:, any other scheme, a
scheme-less relative path, "//host" without its scheme, a value with control or invisible
characters, in any case or with leading spaces) is refused in the page editor with a message on
the field, and, if such a value was stored before this rule, it is never handed out as a link:
templates render no href for it and GraphQL returns it empty.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from wagtail import blocks

LINK_SCHEMES = ("http", "https", "mailto", "tel")
SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
ALLOWED = "a link that starts with https://, http://, / (a page of this site), # (a place on this page), mailto: or tel:"


def link_problem(value: Any) -> str | None:
    """Why `value` may not be a link's href, or None when it may (an empty value is no link)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return f"Enter {ALLOWED}."
    # Browsers drop tabs and line breaks inside a URL ("java\tscript:" runs) and leading control
    # characters: none of them (nor invisible format characters) belongs in a link an editor types.
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in value):
        return f"Remove the tabs, line breaks or invisible characters from this link, and enter {ALLOWED}."
    link = value.strip(" ")
    if link.startswith("#"):
        return None
    if link.startswith("/"):
        if link.startswith(("//", "/\\")):  # another site, whatever the page's scheme: say which
            return f"To link to another site, start with https:// (not //). Enter {ALLOWED}."
        return None
    scheme = SCHEME.match(link)
    if scheme is None:
        return f"Enter {ALLOWED}."
    name = scheme[1].lower()
    if name not in LINK_SCHEMES:
        return f'Links starting with "{name}:" are not allowed. Enter {ALLOWED}.'
    rest = link[scheme.end():]
    if name in ("http", "https"):
        try:
            host = urlsplit(link).netloc
        except ValueError:
            host = ""
        if not rest.startswith("//") or not host:
            return f"Add the site's address after {name}://, e.g. {name}://example.com/page."
    elif not rest.strip():
        return f"Add the address or number after {scheme[1]}:."
    return None


def is_safe_link(value: Any) -> bool:
    return link_problem(value) is None


def safe_link(value: Any) -> str:
    """`value` when it may be a link's href, else "" (no link)."""
    return value if value and is_safe_link(value) else ""


def validate_link(value: Any) -> None:
    """The page editor's check of a link field (a Django validator)."""
    problem = link_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="unsafe_link")


class LinkBlock(blocks.CharBlock):
    """A CharBlock that accepts only what `link_problem` allows. Deconstructs as a plain CharBlock
    (as Wagtail's ChoiceBlock subclasses do): its stored values, and migrations, do not change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.field.validators.append(validate_link)

    def deconstruct(self):
        return ("wagtail.blocks.CharBlock", self._constructor_args[0], self._constructor_args[1])


def link_fields(block: blocks.Block) -> list[str]:
    """The names of a struct block's link fields."""
    children = getattr(block, "child_blocks", None) or {}
    return [name for name, child in children.items() if isinstance(child, LinkBlock)]


def without_unsafe_links(block: blocks.Block, value: Any) -> Any:
    """A struct value whose refused links (stored before the rule) are emptied; `value` itself
    when none is refused."""
    names = [name for name in link_fields(block) if not is_safe_link(value.get(name))] if value is not None else []
    if not names:
        return value
    items = [(name, "" if name in names else item) for name, item in value.items()]
    if isinstance(value, blocks.StructValue):
        return type(value)(value.block, items)
    return dict(items)


class SafeLinksMixin:
    """For a StructBlock with LinkBlock fields: its template reads `value` with any refused link
    emptied, so a stored javascript: (or other refused) link renders no href."""

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        safe = without_unsafe_links(self, value)
        if safe is not value:
            context["self"] = context["value"] = safe
        return context
