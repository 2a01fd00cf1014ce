"""Wagtail's Site for a request, remembered across requests (issue 21).

Wagtail finds a request's Site on every request with a query built from an annotated, filtered
and ordered queryset (`wagtail.models.sites.get_site_for_hostname`). Building that query costs
more than a page served from the page cache spends on everything else but routing. Sites change
rarely, so VisitorMiddleware gives Wagtail's serve view the answer Wagtail gave last time for the
same host and port, as `request._wagtail_site`, which `Site.find_for_request` reads first. Other
views (the events endpoint, the API, the admin) are left alone: most never look a Site up.

What is kept is the Site row's own fields, never the instance: each request gets a fresh Site,
so its root page, and that page's content, is read as Wagtail reads it, and nothing loaded
during one request reaches another. A Site saved or deleted in this process is seen at once;
one saved in another process within SITE_CACHE_SECONDS (default 5 seconds, as segment edits;
0 turns the cache off). Hosts are whatever a client sends, so at most MAX_HOSTS are kept.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.request import split_domain_port
from wagtail.models import Site

from tailored import conf

MAX_HOSTS = 64

# The Site row's columns, in the order from_db takes them.
_FIELDS = [field.attname for field in Site._meta.concrete_fields]


class SiteCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (hostname, port) -> (the Site's column values, or None for no site; when Wagtail answered)
        self._found: dict[tuple[str, Any], tuple[tuple[Any, ...] | None, float]] = {}

    def find(self, request: HttpRequest, seconds: float) -> Site | None:
        """What `Site.find_for_request` answers, asked of Wagtail at most every `seconds` per host."""
        # The host and port Wagtail reads (Site._find_for_request: the raw host, no ALLOWED_HOSTS check).
        key = (split_domain_port(request._get_raw_host())[0], request.get_port())
        found = self._found.get(key)
        now = time.monotonic()
        if found is None or now - found[1] >= seconds:
            site = Site.find_for_request(request)  # Wagtail's own answer, kept on the request
            with self._lock:
                if len(self._found) >= MAX_HOSTS and key not in self._found:
                    self._found.clear()
                self._found[key] = (None if site is None else tuple(getattr(site, name) for name in _FIELDS), now)
            return site
        values = found[0]
        return None if values is None else Site.from_db(Site.objects.db, _FIELDS, values)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()


site_cache = SiteCache()


def attach_site(request: HttpRequest) -> None:
    """Give Wagtail this request's Site from the cache, unless the cache is off."""
    seconds = conf.get("SITE_CACHE_SECONDS")
    if seconds > 0 and not hasattr(request, "_wagtail_site"):
        request._wagtail_site = site_cache.find(request, seconds)


@receiver(post_save, sender=Site)
@receiver(post_delete, sender=Site)
def _site_changed(**kwargs: Any) -> None:
    site_cache.clear()
