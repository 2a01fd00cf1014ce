"""Device class, browser and OS from the User-Agent with ua-parser (Rust resolver via the `regex`
extra). One parse per distinct User-Agent per process: `device_facts` is lru-cached, and a site
sees few distinct User-Agents compared with its requests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse

MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS"})
BOT_HINT = re.compile(r"bot|crawl|spider|slurp|headlesschrome|lighthouse|preview", re.IGNORECASE)
TABLET_HINT = re.compile(r"ipad|tablet|kindle|silk|playbook", re.IGNORECASE)

# Browser families are reported per brand, not per platform: the device class already says
# mobile or desktop, so "Chrome Mobile iOS" and "Mobile Safari" become "chrome" and "safari".
PLATFORM_WORDS = frozenset({"mobile", "ios", "webview", "ui/wkwebview"})
OS_ALIASES = {
    "mac os x": "macos",
    "chrome os": "chromeos",
    "ubuntu": "linux",
    "kubuntu": "linux",
    "debian": "linux",
    "fedora": "linux",
    "linux mint": "linux",
    "arch linux": "linux",
    "red hat": "linux",
    "suse": "linux",
    "opensuse": "linux",
    "gentoo": "linux",
    "centos": "linux",
}
NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the User-Agent says: a device class (DEVICES) and lower-case slugs of the browser
    and OS families (None when ua-parser does not know them)."""

    device: str
    browser: str | None
    os: str | None


def _slug(value: str) -> str:
    return NOT_SLUG.sub("-", value.lower()).strip("-")


def browser_slug(family: str | None) -> str | None:
    """ "Chrome Mobile iOS" -> "chrome", "Samsung Internet" -> "samsung-internet"; "Other" -> None."""
    if not family or family == "Other":
        return None
    words = [word for word in family.lower().split() if word not in PLATFORM_WORDS]
    return _slug(" ".join(words) or family) or None


def os_slug(family: str | None) -> str | None:
    """ "Mac OS X" -> "macos", Linux distributions -> "linux", "iOS" -> "ios"; "Other" -> None."""
    if not family or family == "Other":
        return None
    lowered = family.lower()
    return OS_ALIASES.get(lowered) or _slug(lowered) or None


def warm() -> None:
    """Build ua-parser's resolver (about 150 ms, once per process) before the first request needs
    it: the app starts this in a thread at start-up."""
    parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")


@lru_cache(maxsize=4096)
def device_facts(user_agent: str) -> DeviceFacts:
    """Device class, browser and OS of one User-Agent string (cached: parse once per UA)."""
    if not user_agent:
        return DeviceFacts("bot", None, None)  # an empty User-Agent is a script, not a browser
    result = parse(user_agent)
    browser = browser_slug(result.user_agent.family if result.user_agent else None)
    os_family = result.os.family if result.os is not None else ""
    return DeviceFacts(_classify(user_agent, result.device, os_family), browser, os_slug(os_family))


def _classify(user_agent: str, device, os_family: str) -> str:
    if BOT_HINT.search(user_agent) or (device is not None and device.family == "Spider"):
        return "bot"
    brand = (device.brand or "") if device is not None else ""
    family = (device.family or "") if device is not None else ""
    if TABLET_HINT.search(family) or "Tablet" in brand or TABLET_HINT.search(user_agent):
        return "tablet"
    if os_family == "Android" and "Mobile" not in user_agent:
        return "tablet"  # Android tablets omit "Mobile" from their UA by convention
    if os_family in MOBILE_OS or "Mobi" in user_agent:
        return "mobile"
    return "desktop"


def device_class(user_agent: str) -> str:
    """One of mobile, tablet, desktop or bot. An empty User-Agent is treated as a bot."""
    return device_facts(user_agent).device
