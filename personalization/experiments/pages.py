"""Whole-page experiments: a visitor in an alternative's arm gets that page's content at the
original URL (Wagtail's `before_serve_page` hook); everyone else gets the page itself."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from wagtail.models import Page

from .services import arm_for, experiment_cache

logger = logging.getLogger(__name__)


def serve_alternative(page: Page, request: HttpRequest, args, kwargs) -> HttpResponse | None:
    """The alternative page's response for visitors in its arm; None lets Wagtail serve `page`."""
    live = experiment_cache.peek().by_page.get(page.pk)
    if live is None or getattr(request, "is_preview", False):
        return None
    visitor = getattr(request, "visitor", None)
    alternative_id = live.pages.get(arm_for(visitor, live))
    if not alternative_id or alternative_id == page.pk:
        return None
    alternative = Page.objects.live().filter(pk=alternative_id).first()
    if alternative is None:
        logger.warning("experiment %s: alternative page %s is not live; serving the page", live.key, alternative_id)
        return None
    return alternative.specific.serve(request, *args, **kwargs)
