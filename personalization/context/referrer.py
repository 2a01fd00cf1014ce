"""Where the visitor came from: a referrer class (REFERRER_CLASSES) and UTM campaign parameters.

Classes, first that applies:

- ``campaign``: the query string carries a valid utm_source, utm_medium or utm_campaign (or an
  ad click id, gclid/msclkid). UTM values are lower-cased slugs of at most 64 characters.
- ``direct``: no Referer header (typed URL, bookmark, or a browser that sends none).
- None: a same-site referrer (this host or REFERRER_INTERNAL_HOSTS). An internal navigation
  says nothing about how the visit began, and the request alone cannot know; calling it
  ``direct`` would make "direct" rules match everyone clicking through the site. (The landing
  class and UTM values can later be persisted in the session to survive navigation.)
- ``email``: webmail hosts (mail.google.com, outlook.live.com, any mail.* or webmail.* host).
- ``search``: search engines (google.*, bing, duckduckgo, yahoo, yandex, baidu, ...).
- ``social``: social networks and their link shorteners (facebook, t.co, linkedin, reddit, ...).
- ``other``: any other site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from django.utils.text import slugify

MAX_REFERER_CHARS = 2048
MAX_QUERY_CHARS = 4096
MAX_UTM_CHARS = 64
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
CLICK_IDS = ("gclid", "msclkid")

EMAIL_HOSTS = frozenset(
    {
        "mail.google.com",
        "inbox.google.com",
        "outlook.live.com",
        "outlook.office.com",
        "outlook.office365.com",
        "mail.yahoo.com",
        "mail.aol.com",
        "mail.proton.me",
        "mail.protonmail.com",
        "app.fastmail.com",
        "mail.zoho.com",
        "mail.yandex.ru",
        "e.mail.ru",
        "mail.gmx.net",
        "navigator.gmx.net",
        "navigator.web.de",
        "mail.tutanota.com",
        "app.tuta.com",
    }
)
EMAIL_LABELS = frozenset({"mail", "webmail", "email", "outlook"})
# Domains matched with all their subdomains (l.facebook.com, out.reddit.com, ...).
SOCIAL_DOMAINS = frozenset(
    {
        "facebook.com",
        "fb.com",
        "fb.me",
        "messenger.com",
        "instagram.com",
        "threads.net",
        "threads.com",
        "t.co",
        "twitter.com",
        "x.com",
        "linkedin.com",
        "lnkd.in",
        "reddit.com",
        "redd.it",
        "pinterest.com",
        "pin.it",
        "youtube.com",
        "youtu.be",
        "tiktok.com",
        "snapchat.com",
        "tumblr.com",
        "bsky.app",
        "mastodon.social",
        "vk.com",
        "ok.ru",
        "weibo.com",
        "quora.com",
        "news.ycombinator.com",
        "wa.me",
        "whatsapp.com",
        "t.me",
        "telegram.org",
        "discord.com",
        "xing.com",
        "medium.com",
    }
)
SEARCH_DOMAINS = frozenset(
    {
        "duckduckgo.com",
        "ecosia.org",
        "qwant.com",
        "startpage.com",
        "search.brave.com",
        "kagi.com",
        "naver.com",
        "seznam.cz",
        "ask.com",
        "search.aol.com",
        "so.com",
        "sogou.com",
        "daum.net",
        "yandex.ru",
        "ya.ru",
        "baidu.com",
        "search.yahoo.com",
        "mojeek.com",
    }
)
# Brands with a domain per country (google.co.uk, bing.de, yahoo.co.jp, yandex.com.tr, ...).
SEARCH_BRANDS = frozenset({"google", "bing", "yahoo", "yandex", "baidu"})
ANDROID_APPS = {
    "com.google.android.gm": "email",
    "com.microsoft.office.outlook": "email",
    "com.google.android.googlequicksearchbox": "search",
    "com.facebook.katana": "social",
    "com.instagram.android": "social",
    "com.twitter.android": "social",
    "com.linkedin.android": "social",
    "com.reddit.frontpage": "social",
    "org.telegram.messenger": "social",
}
SHORT_LABEL = re.compile(r"^[a-z]{2,3}\Z")


@dataclass(frozen=True, slots=True)
class ReferrerFacts:
    """The referrer class (or None for same-site navigation) and the campaign parameters."""

    referrer_class: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None


def utm_value(value: str | None) -> str | None:
    """A UTM value as a lower-case slug ("Summer Sale 2025" -> "summer-sale-2025"), at most
    MAX_UTM_CHARS; None when nothing usable is left."""
    if not value:
        return None
    slug = slugify(value[: MAX_UTM_CHARS * 4])[:MAX_UTM_CHARS].strip("-_")
    return slug or None


def campaign_params(query_string: str) -> tuple[str | None, str | None, str | None, bool]:
    """(utm_source, utm_medium, utm_campaign, has_click_id) from a raw query string."""
    if "utm_" not in query_string and "clid=" not in query_string and "clkid=" not in query_string:
        return None, None, None, False
    params = dict(parse_qsl(query_string[:MAX_QUERY_CHARS], keep_blank_values=False))
    source, medium, campaign = (utm_value(params.get(name)) for name in UTM_FIELDS)
    return source, medium, campaign, any(params.get(name) for name in CLICK_IDS)


@lru_cache(maxsize=2048)
def host_class(host: str) -> str:
    """email, search, social or other for a referring host name (lower case, no port); cached,
    as a site sees few distinct referring hosts."""
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".")
    if host in EMAIL_HOSTS or labels[0] in EMAIL_LABELS:
        return "email"
    suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    if any(suffix in SOCIAL_DOMAINS for suffix in suffixes):
        return "social"
    if any(suffix in SEARCH_DOMAINS for suffix in suffixes) or _search_brand(labels):
        return "search"
    return "other"


def _search_brand(labels: list[str]) -> bool:
    # "google" followed by a public suffix of one or two short labels: google.de, google.co.uk.
    for i, label in enumerate(labels):
        rest = labels[i + 1 :]
        if (
            label in SEARCH_BRANDS
            and 1 <= len(rest) <= 2
            and all(SHORT_LABEL.match(part) for part in rest)
        ):
            return True
    return False


def referrer_class(referer: str, own_hosts: frozenset[str]) -> str | None:
    """The class of a Referer header value; None for a same-site referrer."""
    if not referer:
        return "direct"
    try:
        parts = urlsplit(referer[:MAX_REFERER_CHARS].strip())
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return "other"
    if parts.scheme == "android-app":
        return ANDROID_APPS.get(host, "other")
    if not host:
        return "other"
    if host in own_hosts or host.removeprefix("www.") in own_hosts:
        return None
    return host_class(host)


def referrer_facts(referer: str, query_string: str, own_hosts: frozenset[str]) -> ReferrerFacts:
    """Referrer class and UTM values of one request; `own_hosts` are this site's host names
    (without "www."), whose referrers are internal navigation."""
    source, medium, campaign, clicked = campaign_params(query_string)
    if source or medium or campaign or clicked:
        return ReferrerFacts("campaign", source, medium, campaign)
    return ReferrerFacts(referrer_class(referer, own_hosts))
