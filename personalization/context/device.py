"""Device class from the User-Agent with ua-parser (Rust resolver via the `regex` extra)."""

from __future__ import annotations

import re
from functools import lru_cache

from ua_parser import parse

MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS"})
BOT_HINT = re.compile(r"bot|crawl|spider|slurp|headlesschrome|lighthouse|preview", re.IGNORECASE)
TABLET_HINT = re.compile(r"ipad|tablet|kindle|silk|playbook", re.IGNORECASE)


@lru_cache(maxsize=4096)
def device_class(user_agent: str) -> str:
    """One of mobile, tablet, desktop or bot. An empty User-Agent is treated as a bot."""
    if not user_agent or BOT_HINT.search(user_agent):
        return "bot"
    result = parse(user_agent)
    device = result.device
    if device is not None and device.family == "Spider":
        return "bot"
    brand = (device.brand or "") if device is not None else ""
    family = (device.family or "") if device is not None else ""
    if TABLET_HINT.search(family) or "Tablet" in brand or TABLET_HINT.search(user_agent):
        return "tablet"
    os_family = result.os.family if result.os is not None else ""
    if os_family == "Android" and "Mobile" not in user_agent:
        return "tablet"  # Android tablets omit "Mobile" from their UA by convention
    if os_family in MOBILE_OS or "Mobi" in user_agent:
        return "mobile"
    return "desktop"
