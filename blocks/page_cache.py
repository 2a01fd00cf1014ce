"""A decision-keyed page cache inside the app (issue 21 item 3).

Choosing a page's variants takes well under a millisecond (`decide_page`); rendering the page
takes tens. So once the decisions are made, the rendered page is looked up by what it is a
function of: the page and its live revision, the request's path and query, the active language
(LocaleMiddleware may choose it from a cookie or Accept-Language, not the path), the chosen variant
(and experiment arm, and holdout) of every personalized block, and a "part" for each other block
that says what it will show this visitor:

* content blocks (hero, rich text, call to action, image with text): nothing, they are the same
  for everyone;
* carousels of manual, category or tag products: nothing; of trending, recently viewed or
  recommended products, and recommendations: the product ids this visitor gets (so a new model
  version, a new view or a thumbs down is a new key, not a stale page);
* an offer: whether it is still live; a personalized message: its text for this visitor;
* an experiment block: its arm;
* the onboarding survey while it asks (its form carries a CSRF token) and any block type not
  known here: the page is not cached (a site's own block may say what it shows by defining
  `page_cache_part(value, visitor) -> str | None`).

Only consenting visitors' pages are kept (everyone else's page is a function of the audience key,
which shared caches key on: tailored.caching). A hit skips rendering; exposures and decisions are still recorded, because the decisions are
made (by the same `choose`) before the lookup. Entries live PAGE_CACHE_SECONDS (default 300)
and every entry goes when any page is published or unpublished (another page's title or a
product's price may show on this one): keys name a generation that a publish increments, one
command whatever the number of cached pages (dropping them by a SCAN of the keys walked all of
Redis, profiles included, in the editor's publish request); the old entries expire unread.
Logged-in users, previews and ?explain=1 never use it.
Stored by tailored.html_cache, as the fragments: in Redis with the profile store (shared by the
web workers), else in an in-process LRU, with an in-process stand-in while Redis is away.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from wagtail.signals import page_published, page_unpublished

from tailored import conf
from tailored.caching import logged_in
from tailored.context.privacy_signals import browser_opts_out
from tailored.html_cache import HtmlCache
from tailored.middleware import current_request
from tailored.services import read_consent

from .commerce import OfferBannerBlock, ProductCarouselBlock, RecommendationBlock
from .engagement import OnboardingSurveyBlock, PersonalizedMessageBlock
from .experiments import ExperimentBlock
from .personalized import cacheable, decide_page

logger = logging.getLogger(__name__)

PREFIX = "tl:v1:page:"
HEADER = "X-Tailored-Page-Cache"
STATIC_SOURCES = frozenset({"manual", "category", "tag"})

CACHE = HtmlCache("page", local_entries=256)
GENERATION_KEY = "tl:v1:page-generation"
GENERATION_SECONDS = 1.0  # how long a process trusts the generation it read: a publish elsewhere shows within it


class Generation:
    """Which cached pages are current: a number in Redis that a publish increments. A process
    reads it at most once every GENERATION_SECONDS. A publish Redis did not take (away, out of
    memory, a replica) empties this process's own copies at once and increments the number at
    this process's next answer from Redis; until then this process names a generation of its own
    (the last number and a token of this publish), so it serves no page cached before the
    publish, from Redis either. Other processes learn of it only once Redis takes the increment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value, self._read_at, self._pending = "0", float("-inf"), ""

    def current(self) -> str:
        client = CACHE.redis()
        now = time.monotonic()
        if client is None or (not self._pending and now - self._read_at < GENERATION_SECONDS):
            return self._value
        with self._lock:
            try:
                if self._pending:
                    client.incr(GENERATION_KEY)
                    self._pending = ""
                value = client.get(GENERATION_KEY)
            except Exception:  # noqa: BLE001 - the outage cache serves meanwhile; the last number stands
                return f"{self._value}~{self._pending}" if self._pending else self._value
            self._value = value.decode() if isinstance(value, bytes) else str(value or "0")
            self._read_at = now
        return self._value

    def advance(self) -> None:
        """Make every cached page stale, here at once and everywhere within GENERATION_SECONDS."""
        CACHE.forget_local()
        client = CACHE.redis()
        with self._lock:
            self._read_at = float("-inf")
            if client is None:
                return
            try:
                client.incr(GENERATION_KEY)
                self._pending = ""
            except Exception as error:  # noqa: BLE001 - sent at the next answer from Redis
                logger.warning("page cache: the publish reaches Redis when it is back: %s", error)
                self._pending = uuid.uuid4().hex[:12]


generation = Generation()


def enabled(request: HttpRequest) -> bool:
    """For consenting visitors (pages for everyone else are shared caches' business, per audience
    key), never for editors, previews or explanations."""
    if not conf.get("PAGE_CACHE_SECONDS") or request.method != "GET" or getattr(request, "is_preview", False):
        return False
    if request.GET.get("explain") == "1" or logged_in(request):
        return False
    # From the cookies alone: a page whose blocks never read the visitor must not resolve them.
    return conf.get("VISITOR_COOKIE") in request.COOKIES and read_consent(request).allows_profile


def page_key(page: Any, request: HttpRequest) -> str | None:
    """The cache key of this page for this request, or None when the page cannot be cached.
    Works on the stored data: a hit decodes only what a part needs (no product or image look-up
    for content the visitor will not see rendered again)."""
    visitor = getattr(request, "visitor", None)
    chosen = dict(decide_page(page, request).choices)
    parts: list[str] = [
        str(page.pk), str(getattr(page, "live_revision_id", None)), request.get_full_path(),
        str(browser_opts_out(request.META)),  # the head's consent script is told (frontend.partials)
        translation.get_language() or "",  # LocaleMiddleware may pick it from a cookie or a header
    ]
    for stream, raw in _top_level(page):
        choice = chosen.get(str(raw.get("id")))
        if choice is not None:
            parts.append(f"{raw.get('id')}={choice.key}/{choice.experiment}/{choice.arm}/{choice.holdout}")
            stream, children = choice.content, choice.content.raw_data
        else:
            children = (raw,)
        for child in children:
            block = stream.stream_block.child_blocks.get(child["type"])
            part = None if block is None else part_of(block, child["value"], visitor)
            if part is None:
                return None
            parts.append(part)
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"{PREFIX}{{{page.pk}}}:{generation.current()}:{digest}"


def part_of(block: Any, raw: Any, visitor: Any) -> str | None:
    """What a block (its stored value) shows this visitor, as a short string; None when the page
    cannot be cached. Values are decoded only for the blocks whose part needs them."""
    own = getattr(block, "page_cache_part", None)
    if own is not None:
        return own(block.to_python(raw), visitor)
    if isinstance(block, ProductCarouselBlock) and raw.get("source") in STATIC_SOURCES:
        return ""
    if isinstance(block, ProductCarouselBlock | RecommendationBlock):
        return ",".join(str(product.pk) for product in block.products_for(block.to_python(raw), visitor))
    if cacheable(block):
        return ""
    if isinstance(block, OfferBannerBlock):
        return "live" if block.is_active(block.to_python(raw)) else "ended"
    if isinstance(block, PersonalizedMessageBlock):
        return block.message(block.to_python(raw), current_request(), visitor)
    if isinstance(block, ExperimentBlock):
        return block.choose(block.to_python(raw), visitor).key
    if isinstance(block, OnboardingSurveyBlock):
        return None if block.should_ask(visitor) else "not asked"
    return None


def _top_level(page: Any) -> Iterator[tuple[Any, Any]]:
    """(stream value, stored child) for every top-level block of the page's StreamFields."""
    from wagtail.fields import StreamField

    for field in type(page)._meta.concrete_fields:
        if isinstance(field, StreamField):
            stream = getattr(page, field.name)
            for raw in stream.raw_data if stream else ():
                yield stream, raw


def serve(page: Any, request: HttpRequest, serve_args: Any, serve_kwargs: Any) -> HttpResponse | None:
    """Wagtail's before_serve_page (the last one): the cached page for this request's decisions,
    or the page served and rendered here and kept; None (Wagtail serves) when it cannot be cached."""
    if not enabled(request):
        return None
    try:
        key = page_key(page, request)
    except Exception as error:  # a cache must never break a page
        logger.warning("page cache: no key for page %s: %s", getattr(page, "pk", None), error)
        return None
    if key is None:
        return None
    html = CACHE.get(key)
    if html is not None:
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        response[HEADER] = "hit"
        return response
    response = page.serve(request, *serve_args, **serve_kwargs)
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    response[HEADER] = "miss"
    _store(key, request, response)
    return response


def _store(key: str, request: HttpRequest, response: HttpResponse) -> None:
    """Keep a page rendered after a miss, unless it became something a cache must not keep."""
    if (
        response.status_code != 200
        or response.cookies  # a CSRF token or an id: this visitor's own
        or request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        or getattr(response, "streaming", False)
        or not response.get("Content-Type", "").startswith("text/html")
    ):
        return
    CACHE.put(key, response.content.decode(), int(conf.get("PAGE_CACHE_SECONDS")))


def forget_local() -> None:
    """Empty this process's LRUs (the memory store's page cache)."""
    CACHE.forget_local()


def invalidate_all() -> None:
    """Make every cached page stale (a page was published or unpublished)."""
    generation.advance()


@receiver(page_published)
@receiver(page_unpublished)
def _drop_cached_pages(sender: Any, instance: Any, **kwargs: Any) -> None:
    invalidate_all()
