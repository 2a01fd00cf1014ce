"""Jinja2 extension `tailored.frontend.jinja2tags.TailoredExtension` (as wagtail.jinja2tags):
add it to the Jinja2 engine's OPTIONS["extensions"], then in the site's base template

    <head>…{{ tailored_head() }}</head>
    <body>…{{ tailored_body() }}</body>   (anywhere in <body>: the banner is fixed to the window)

The Django template tags `{% tailored_head %}` / `{% tailored_body %}` render the same partials
with the same context (tailored.frontend.partials)."""

from __future__ import annotations

from typing import Any

from django.utils.text import Truncator
from jinja2 import pass_context
from jinja2.ext import Extension
from jinja2.runtime import Context
from markupsafe import Markup

from . import partials


def _render(context: Context, name: str, values: dict[str, Any] | None) -> Markup:
    if values is None:
        return Markup("")
    # The site's own environment renders the partial: its loader finds tailored/*.html in jinja2/.
    return Markup(context.environment.get_template(name).render(values))


@pass_context
def tailored_head(context: Context) -> Markup:
    return _render(context, partials.HEAD_TEMPLATE, partials.head_context(context.get("request")))


@pass_context
def tailored_body(context: Context) -> Markup:
    values = partials.body_context(context.get("request"), context.get("preview_audience"), context.get("page"))
    return _render(context, partials.BODY_TEMPLATE, values)


def truncatewords(value: object, count: int) -> str:
    """Django's `truncatewords`: the first `count` words, then " …"."""
    return Truncator(value).words(int(count), truncate=" …")


class TailoredExtension(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.globals.update({"tailored_head": tailored_head, "tailored_body": tailored_body})
        # Django's filter, so a block's Jinja2 template cuts text as its Django template does.
        environment.filters["truncatewords"] = truncatewords
