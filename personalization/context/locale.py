"""The visitor's preferred language from Accept-Language: the best-quality well-formed tag,
normalized to language[-Script][-REGION] ("EN-us" -> "en-US", "zh-hant-tw" -> "zh-Hant-TW")."""

from __future__ import annotations

import re
from functools import lru_cache

from .geo import dominant_zone_name

MAX_HEADER_CHARS = 512
MAX_ENTRIES = 16
LANGUAGE = re.compile(r"^[a-z]{2,3}\Z")
SCRIPT = re.compile(r"^[a-z]{4}\Z")
REGION = re.compile(r"^(?:[a-z]{2}|[0-9]{3})\Z")
SUBTAG = re.compile(r"^[a-z0-9]{1,8}\Z")


def normalize_tag(tag: str) -> str | None:
    """A BCP 47 tag reduced to language, script and region; None when it is not well formed.
    Variants and extensions are dropped: no rule needs them and they multiply distinct values."""
    subtags = tag.strip().lower().replace("_", "-").split("-")
    if not LANGUAGE.match(subtags[0]) or not all(SUBTAG.match(part) for part in subtags[1:]):
        return None
    parts = [subtags[0]]
    rest = subtags[1:]
    if rest and SCRIPT.match(rest[0]):
        parts.append(rest.pop(0).title())
    if rest and REGION.match(rest[0]):
        parts.append(rest[0].upper())
    return "-".join(parts)


def _quality(params: list[str]) -> float | None:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                return None
            return quality if 0.0 <= quality <= 1.0 else None
    return 1.0


@lru_cache(maxsize=1024)
def locale_from_header(accept_language: str) -> str | None:
    """The first well-formed tag by quality (ties keep header order); "*" and q=0 are skipped.
    Cached: browsers send a handful of distinct Accept-Language values."""
    candidates: list[tuple[float, int, str]] = []
    for index, entry in enumerate(accept_language[:MAX_HEADER_CHARS].split(",")[:MAX_ENTRIES]):
        tag, *params = entry.split(";")
        quality = _quality(params)
        if not quality:
            continue
        normalized = normalize_tag(tag)
        if normalized is not None:
            candidates.append((-quality, index, normalized))
    return min(candidates)[2] if candidates else None


def locale_country(locale: str | None) -> str | None:
    """The ISO 3166-1 country of a normalized tag's region ("en-GB" -> "GB"); None for a tag
    without one ("de") or with a numeric area ("es-419": Latin America)."""
    region = locale.rsplit("-", 1)[-1] if locale and "-" in locale else ""
    return region if len(region) == 2 and region.isalpha() else None


def zone_name_from_language(accept_language: str, country: str | None = None) -> str | None:
    """The time zone the preferred language's region suggests ("en-GB" -> "Europe/London"),
    where that country has one zone or one holding most of its people; None otherwise, and when
    the region disagrees with the country a trusted geo source gave (a British English browser
    in the United States says nothing about the visitor's clock)."""
    region = locale_country(locale_from_header(accept_language))
    if region is None or (country is not None and region != country):
        return None
    return dominant_zone_name(region)
