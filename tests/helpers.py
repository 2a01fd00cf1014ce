"""Small helpers shared by the database tests."""

from __future__ import annotations

import re
import time

from personalization import conf
from personalization.core.types import Event

CONSENT_GRANTED = "analytics.personalization"
VARIANT_ATTR = re.compile(r'data-tl-variant="([^"]+)"')


def make_fan(visitor_id: str, category: str = "electronics", views: int = 3) -> None:
    """Record `views` product views of `category` for the visitor in the configured store."""
    now = time.time()
    events = [
        Event(f"{category}-{i}", "page_view", ts=now - i, category=category, item=str(i + 1), attrs={"page_type": "product"})
        for i in range(views)
    ]
    conf.get_profile_store().record(visitor_id, events, now)


def consent_cookies(client, visitor_id: str) -> None:
    client.cookies["tl_consent"] = CONSENT_GRANTED
    client.cookies["tl_vid"] = visitor_id


def ssr_variants(html: str) -> list[str]:
    """The variant keys a server-rendered page chose, in page order."""
    return VARIANT_ATTR.findall(html)
