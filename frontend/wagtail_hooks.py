"""The page editor's side of preview as an audience: a small script that keeps the preview pane's
device in the `tl_preview_device` cookie (tailored.frontend.preview explains how it is used)."""

from __future__ import annotations

from django.templatetags.static import static
from django.utils.html import format_html
from wagtail import hooks

from tailored import caching
from tailored.blocks import page_cache

from .preview import DEVICE_COOKIE


@hooks.register("insert_editor_js")
def preview_size_script() -> str:
    return format_html('<script src="{}" data-cookie="{}"></script>', static("tailored/preview_size.js"), DEVICE_COOKIE)


@hooks.register("before_serve_page", order=-100)
def remember_page(page, request, serve_args, serve_kwargs) -> None:
    """First of the before_serve_page hooks: mark the response as a page's, the only kind
    VisitorMiddleware may let shared caches keep (tailored.caching)."""
    caching.remember_page(request, page)


@hooks.register("before_serve_page", order=100)
def serve_from_page_cache(page, request, serve_args, serve_kwargs):
    """Last of the before_serve_page hooks (after page experiments chose the page): the page from
    the decision-keyed page cache, or rendered and kept there (tailored.blocks.page_cache)."""
    return page_cache.serve(page, request, serve_args, serve_kwargs)
