"""Device class, browser and OS from typical User-Agents (ua-parser, one parse per UA)."""

from __future__ import annotations

import pytest

from tailored.context.device import browser_slug, device_class, device_facts, os_slug

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_UBUNTU = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"
)
CHROME_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"
)
EDGE = CHROME_WINDOWS + " Edg/131.0.0.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("user_agent", "device", "browser", "os"),
    [
        (IPHONE, "mobile", "safari", "ios"),
        (IPAD, "tablet", "safari", "ios"),
        (ANDROID_PHONE, "mobile", "chrome", "android"),
        (ANDROID_TABLET, "tablet", "chrome", "android"),
        (CHROME_WINDOWS, "desktop", "chrome", "windows"),
        (FIREFOX_UBUNTU, "desktop", "firefox", "linux"),
        (SAFARI_MAC, "desktop", "safari", "macos"),
        (CHROME_IOS, "mobile", "chrome", "ios"),
        (EDGE, "desktop", "edge", "windows"),
        (GOOGLEBOT, "bot", "googlebot", None),
        ("", "bot", None, None),
        ("curl/8.5.0", "desktop", "curl", None),
    ],
)
def test_typical_user_agents(user_agent, device, browser, os):
    facts = device_facts(user_agent)
    assert (facts.device, facts.browser, facts.os) == (device, browser, os)
    assert device_class(user_agent) == device


def test_each_user_agent_is_parsed_once():
    device_facts.cache_clear()
    for _ in range(50):
        device_facts(IPHONE)
        device_class(IPHONE)
    info = device_facts.cache_info()
    assert info.misses == 1 and info.hits == 99


@pytest.mark.parametrize(
    ("family", "slug"),
    [
        ("Mobile Safari UI/WKWebView", "safari"),
        ("Chrome Mobile WebView", "chrome"),
        ("Firefox iOS", "firefox"),
        ("Samsung Internet", "samsung-internet"),
        ("Other", None),
        (None, None),
    ],
)
def test_browser_families_are_brand_slugs(family, slug):
    assert browser_slug(family) == slug


@pytest.mark.parametrize(
    ("family", "slug"),
    [("Mac OS X", "macos"), ("Chrome OS", "chromeos"), ("Fedora", "linux"), ("Windows Phone", "windows-phone"), ("Other", None)],
)
def test_os_families_are_slugs(family, slug):
    assert os_slug(family) == slug
