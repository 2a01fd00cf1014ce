"""Referrer classes from the Referer host, and UTM campaign parameters."""

from __future__ import annotations

import pytest

from tailored.context.referrer import ReferrerFacts, host_class, referrer_facts, utm_value
from tailored.core.types import REFERRER_CLASSES

OWN = frozenset({"shop.example"})


@pytest.mark.parametrize(
    ("referer", "expected"),
    [
        ("", "direct"),
        ("https://www.google.com/", "search"),
        ("https://www.google.co.uk/search?q=boots", "search"),
        ("https://google.de/", "search"),
        ("https://www.bing.com/search?q=x", "search"),
        ("https://duckduckgo.com/", "search"),
        ("https://search.yahoo.co.jp/search?p=x", "search"),
        ("https://yandex.com.tr/", "search"),
        ("https://www.ecosia.org/search?q=x", "search"),
        ("https://search.brave.com/search?q=x", "search"),
        ("https://l.facebook.com/l.php?u=x", "social"),
        ("https://m.facebook.com/", "social"),
        ("https://t.co/abc", "social"),
        ("https://x.com/someone/status/1", "social"),
        ("https://www.linkedin.com/feed/", "social"),
        ("https://out.reddit.com/t3_x", "social"),
        ("https://www.youtube.com/watch?v=x", "social"),
        ("https://news.ycombinator.com/item?id=1", "social"),
        ("https://mail.google.com/mail/u/0/", "email"),
        ("https://outlook.live.com/mail/0/inbox", "email"),
        ("https://mail.yahoo.com/d/folders/1", "email"),
        ("https://webmail.example-isp.net/", "email"),
        ("android-app://com.google.android.gm/", "email"),
        ("android-app://com.google.android.googlequicksearchbox/", "search"),
        ("android-app://com.facebook.katana", "social"),
        ("android-app://org.example.app", "other"),
        ("https://blog.example.org/post", "other"),
        ("https://googleusercontent.example.com/", "other"),  # a brand label inside another domain
        ("https://google.evil.example.com/", "other"),
        ("https://facebook.com.evil.example/", "other"),
        ("not a url", "other"),
        ("https://[::1/", "other"),
        ("https://shop.example/products/", None),  # same site: internal navigation
        ("https://www.shop.example/", None),
        ("http://shop.example:8000/cart", None),
    ],
)
def test_referrer_classes(referer, expected):
    facts = referrer_facts(referer, "", OWN)
    assert facts == ReferrerFacts(expected)
    assert expected is None or expected in REFERRER_CLASSES


def test_hosts_are_cached():
    host_class.cache_clear()
    for _ in range(3):
        host_class("www.google.com")
    assert host_class.cache_info().misses == 1


def test_utm_parameters_make_a_campaign():
    facts = referrer_facts(
        "https://l.facebook.com/",
        "utm_source=Newsletter&utm_medium=E-Mail&utm_campaign=Summer+Sale%202025&page=2",
        OWN,
    )
    assert facts == ReferrerFacts("campaign", "newsletter", "e-mail", "summer-sale-2025")


def test_one_utm_parameter_is_enough_and_others_stay_none():
    assert referrer_facts("", "utm_campaign=spring", OWN) == ReferrerFacts("campaign", None, None, "spring")


def test_ad_click_ids_make_a_campaign():
    assert referrer_facts("https://www.google.com/", "gclid=abc123", OWN).referrer_class == "campaign"
    assert referrer_facts("https://www.bing.com/", "msclkid=abc123", OWN).referrer_class == "campaign"


def test_campaign_wins_over_same_site():
    assert referrer_facts("https://shop.example/", "utm_source=x", OWN).referrer_class == "campaign"


@pytest.mark.parametrize("query", ["utm_source=&utm_medium=", "utm_source=%20%20", "utm_source=!!!", "xutm_source=a"])
def test_empty_or_unusable_utm_values_are_ignored(query):
    assert referrer_facts("", query, OWN) == ReferrerFacts("direct")


@pytest.mark.parametrize(
    ("raw", "slug"),
    [
        ("Google", "google"),
        ("cpc", "cpc"),
        ("Été_2025", "ete_2025"),
        ("<script>alert(1)</script>", "scriptalert1script"),
        ("a" * 500, "a" * 64),
        ("", None),
        (None, None),
    ],
)
def test_utm_values_are_bounded_lower_case_slugs(raw, slug):
    assert utm_value(raw) == slug


def test_a_huge_query_string_is_bounded():
    query = "x=" + "y" * 100_000 + "&utm_source=late"
    assert referrer_facts("", query, OWN) == ReferrerFacts("direct")  # past the parsed prefix
