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
    if not viewable(alternative, request):
        return None
    return alternative.specific.serve(request, *args, **kwargs)


def viewable(alternative: Page, request: HttpRequest) -> bool:
    """Whether this request may see the alternative at its own URL: its view restrictions (a
    login, a password, groups, its ancestors' too) hold at the original URL as well, else the
    visitor gets the original page, as Wagtail would never serve them the alternative."""
    for restriction in alternative.get_view_restrictions():
        if not restriction.accept_request(request):
            logger.info("alternative page %s is restricted for this request: serving the page", alternative.pk)
            return False
    return True
