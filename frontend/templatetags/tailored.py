"""`{% load tailored %}`: what a Django-templates site adds to its base template.

    <head>…{% tailored_head %}</head>
    <body>…{% tailored_body %}</body>   (anywhere in <body>: the banner is fixed to the window)

`tailored_head`: the blocks' stylesheet (no CSRF token: it would set a cookie before consent).
`tailored_body`: the consent banner, the ?explain=1 panel for editors, and tracker.js with its
settings; nothing in an editor's preview. Jinja2 sites use `tailored_head()` / `tailored_body()`
(tailored.frontend.jinja2tags), which render the same partials with the same context."""

from __future__ import annotations

from typing import Any

from django import template
from django.http import HttpRequest
from django.utils.safestring import SafeString

from tailored.frontend import partials

register = template.Library()


def _render(context: template.Context, name: str, values: dict[str, Any] | None) -> SafeString | str:
    if values is None:
        return ""
    # The engine rendering the page renders the partial: its loaders find tailored/*.html in templates/.
    partial = context.template.engine.get_template(name)
    return partial.render(template.Context(values, autoescape=context.autoescape))


def _request(context: template.Context) -> HttpRequest | None:
    # A RequestContext knows its request even without the `request` context processor.
    return getattr(context, "request", None) or context.get("request")


@register.simple_tag(takes_context=True)
def tailored_head(context: template.Context) -> SafeString | str:
    return _render(context, partials.HEAD_TEMPLATE, partials.head_context(_request(context)))


@register.simple_tag(takes_context=True)
def tailored_body(context: template.Context) -> SafeString | str:
    values = partials.body_context(_request(context), context.get("preview_audience"), context.get("page"))
    return _render(context, partials.BODY_TEMPLATE, values)
