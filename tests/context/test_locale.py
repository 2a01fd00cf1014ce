"""The visitor's locale from Accept-Language."""

from __future__ import annotations

import pytest

from tailored.context.locale import locale_country, locale_from_header, normalize_tag


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("en-US,en;q=0.9", "en-US"),
        ("de-CH", "de-CH"),
        ("fr;q=0.5, de-ch;q=0.9, en;q=0.8", "de-CH"),
        ("EN-gb", "en-GB"),
        ("zh-hant-tw,zh;q=0.8", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("en_US", "en-US"),
        ("*, fr;q=0.5", "fr"),
        ("x-klingon, it;q=0.1", "it"),
        ("en;q=0, de;q=0.2", "de"),
        ("en;q=abc, pt-BR;q=0.4", "pt-BR"),
        ("en;q=2, nl", "nl"),
        ("sl-rozaj-biske", "sl"),
        ("en, de", "en"),  # equal quality keeps header order
        ("", None),
        ("*", None),
        ("1234, !!", None),
        (";q=1", None),
    ],
)
def test_accept_language(header, locale):
    assert locale_from_header(header) == locale


def test_long_headers_are_bounded():
    header = ",".join(["xx-invalid-tag-!!"] * 500) + ",fr"
    assert locale_from_header(header) is None


def test_normalize_tag():
    assert normalize_tag("sr-latn-rs") == "sr-Latn-RS"
    assert normalize_tag("en-") is None
    assert normalize_tag("toolonglanguage") is None


@pytest.mark.parametrize(
    ("locale", "country"),
    [("en-GB", "GB"), ("zh-Hant-TW", "TW"), ("de", None), ("es-419", None), (None, None)],
)
def test_the_country_of_a_locale(locale, country):
    assert locale_country(locale) == country
