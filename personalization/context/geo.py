"""Country, region and city of the visitor, from a trusted CDN header or a GeoIP2 database file.

Geo is never guessed: with neither source configured, or when the source does not know, every
geo fact is None. Sources, in order:

1. Headers set by a CDN or load balancer in front of the site (PERSONALIZATION settings
   GEO_COUNTRY_HEADER, GEO_REGION_HEADER, GEO_CITY_HEADER; a header name such as "CF-IPCountry"
   or its request.META key "HTTP_CF_IPCOUNTRY"). Only configure a header that your edge sets on
   every request and that a client cannot pass through; common names:

   =====================  ==============================  =================================  ======================
   CDN                    country                         region (subdivision)               city
   =====================  ==============================  =================================  ======================
   Cloudflare             CF-IPCountry                    CF-Region-Code (*)                 CF-IPCity (*)
   AWS CloudFront         CloudFront-Viewer-Country       CloudFront-Viewer-Country-Region   CloudFront-Viewer-City
   Vercel                 X-Vercel-IP-Country             X-Vercel-IP-Country-Region         X-Vercel-IP-City
   Fastly, Akamai, GCLB   a header you define from the edge's geo variables (e.g. Fastly client.geo.country_code)
   =====================  ==============================  =================================  ======================

   (*) with Cloudflare's "Add visitor location headers" managed transform. Region values may
   be the bare subdivision ("CA", "ENG") or a full ISO 3166-2 code ("US-CA"); both work.
   Unknown markers ("XX", "T1" for Tor, "A1", "ZZ", ...) mean unknown.

2. A GeoIP2/GeoLite2 City or Country database (GEOIP2_DATABASE, a path to an .mmdb file),
   read with the optional `maxminddb` package (the `geoip` extra). The client address is
   REMOTE_ADDR, or GEO_CLIENT_IP_HEADER when a trusted proxy sets one (for a comma-separated
   X-Forwarded-For, the entry GEO_TRUSTED_PROXY_COUNT places from the right). The address is
   used for the lookup only: it is never stored, cached or logged.

`zone_name_for` maps the result to a timezone where that is unambiguous (single-timezone
countries, and the subdivisions of a few multi-timezone ones). `dominant_zone_name` is the weaker
guess from a country alone (where most of its people live), for the Accept-Language fallback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from django.http import HttpRequest

from tailored import conf

logger = logging.getLogger(__name__)

DEFAULT_COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"
COUNTRY = re.compile(r"^[A-Z]{2}\Z")
SUBDIVISION = re.compile(r"^(?:([A-Z]{2})-)?([A-Z0-9]{1,3})\Z")
# Codes CDNs and databases use for "we do not know" (or for no real country).
UNKNOWN_COUNTRIES = frozenset({"XX", "ZZ", "EU", "AP", "A1", "A2", "O1", "T1"})
COUNTRY_ALIASES = {"UK": "GB"}  # reserved for the United Kingdom; some systems send it
MAX_CITY_CHARS = 80
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class GeoFacts:
    """Where the visitor is, as far as a trusted source says; None where it does not."""

    country: str | None = None  # ISO 3166-1 alpha-2, upper case
    region: str | None = None  # ISO 3166-2, e.g. "US-CA"
    city: str | None = None


NO_GEO = GeoFacts()


@lru_cache(maxsize=64)
def meta_key(header: str) -> str:
    """The request.META key of a header name: "CF-IPCountry" -> "HTTP_CF_IPCOUNTRY"."""
    key = header.strip().upper().replace("-", "_")
    return key if key.startswith("HTTP_") or key in ("REMOTE_ADDR",) else f"HTTP_{key}"


def country_code(value: str | None) -> str | None:
    """A valid ISO 3166-1 alpha-2 code, upper case; None for garbage and unknown markers."""
    if not value:
        return None
    code = value.strip().upper()
    code = COUNTRY_ALIASES.get(code, code)
    return code if COUNTRY.match(code) and code not in UNKNOWN_COUNTRIES else None


def region_code(value: str | None, country: str | None) -> str | None:
    """An ISO 3166-2 code "CC-SUB" from a bare ("CA") or full ("US-CA") subdivision value; None
    when it is malformed, when a bare value comes without a country, or when the two disagree."""
    if not value or len(value) > 8:
        return None
    match = SUBDIVISION.match(value.strip().upper())
    if match is None:
        return None
    prefix, subdivision = match.groups()
    prefix = COUNTRY_ALIASES.get(prefix, prefix) if prefix else country
    if (
        prefix is None
        or (country is not None and prefix != country)
        or country_code(prefix) is None
    ):
        return None
    return f"{prefix}-{subdivision}"


def city_name(value: str | None, from_header: bool = True) -> str | None:
    """A city name, whitespace-collapsed and bounded; None for empty or control characters. A
    header value is first decoded: UTF-8 bytes (WSGI hands them over as latin-1) or URL-encoded."""
    if not value:
        return None
    if from_header:
        with contextlib.suppress(UnicodeError):
            value = value.encode("latin-1").decode("utf-8")
        if "%" in value:
            value = unquote(value)
    value = " ".join(value.split())
    if not value or len(value) > MAX_CITY_CHARS or CONTROL.search(value):
        return None
    return value


def geo_from_request(request: HttpRequest) -> GeoFacts:
    """The visitor's geo from the configured header, else the configured database, else none."""
    settings = conf.get_settings()
    meta = request.META
    facts = geo_from_headers(meta, settings)
    if facts.country is None and (path := settings.get("GEOIP2_DATABASE")):
        address = client_ip(meta, settings)
        facts = geo_from_database(path, address) if address else NO_GEO
    return facts


def geo_from_headers(meta: dict[str, Any], settings: dict[str, Any]) -> GeoFacts:
    """Geo from the configured CDN headers; a region header alone may carry its country."""
    header = settings.get("GEO_COUNTRY_HEADER", DEFAULT_COUNTRY_HEADER)
    country = country_code(meta.get(meta_key(header))) if header else None
    region_header = settings.get("GEO_REGION_HEADER")
    region = region_code(meta.get(meta_key(region_header)), country) if region_header else None
    if region is None and country is None:
        return NO_GEO
    city_header = settings.get("GEO_CITY_HEADER")
    city = city_name(meta.get(meta_key(city_header))) if city_header else None
    if country is None and region is not None:
        country = region[:2]  # a full ISO 3166-2 code names its country
    return GeoFacts(country, region, city)


def client_ip(meta: dict[str, Any], settings: dict[str, Any]) -> str | None:
    """The client address for a database lookup: REMOTE_ADDR, or the trusted proxy's header."""
    header = settings.get("GEO_CLIENT_IP_HEADER")
    raw = meta.get(meta_key(header)) if header else meta.get("REMOTE_ADDR")
    if not raw:
        return None
    if "," in raw:
        entries = [entry.strip() for entry in raw.split(",")]
        hops = max(int(settings.get("GEO_TRUSTED_PROXY_COUNT", 1)), 1)
        raw = entries[-hops] if hops <= len(entries) else ""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    return None if address.is_private or address.is_loopback else str(address)


@lru_cache(maxsize=4)
def open_database(path: str):
    """A maxminddb Reader for `path`, opened once per process; None (logged once) if the package
    is missing or the file cannot be read, so a misconfiguration costs geo, never a page."""
    try:
        import maxminddb
    except ImportError:
        logger.error("GEOIP2_DATABASE is set but maxminddb is not installed (the `geoip` extra)")
        return None
    try:
        return maxminddb.open_database(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
        logger.error("cannot open GEOIP2_DATABASE %r: %s", path, error)
        return None


def geo_from_database(path: str, address: str) -> GeoFacts:
    """Country, subdivision and city of `address` in a GeoIP2-shaped database."""
    reader = open_database(path)
    if reader is None:
        return NO_GEO
    try:
        record = reader.get(address)
    except (ValueError, OSError):
        return NO_GEO  # e.g. an IPv6 address in an IPv4-only database
    return _facts_from_record(record) if isinstance(record, dict) else NO_GEO


def _facts_from_record(record: dict[str, Any]) -> GeoFacts:
    country_entry = record.get("country")
    raw_country = (
        country_entry.get("iso_code") if isinstance(country_entry, dict) else country_entry
    )
    country = country_code(raw_country if isinstance(raw_country, str) else None)
    if country is None:
        return NO_GEO
    subdivisions = record.get("subdivisions")
    region = None
    if isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
        region = region_code(str(subdivisions[0].get("iso_code") or ""), country)
    names = (
        (record.get("city") or {}).get("names") if isinstance(record.get("city"), dict) else None
    )
    city = city_name(names.get("en"), from_header=False) if isinstance(names, dict) else None
    return GeoFacts(country, region, city)


def configuration_errors(settings: dict[str, Any] | None = None) -> list[str]:
    """What is wrong with the geo settings, for a system check (empty when fine)."""
    settings = conf.get_settings() if settings is None else settings
    path = settings.get("GEOIP2_DATABASE")
    errors = []
    if path:
        try:
            import maxminddb  # noqa: F401
        except ImportError:
            errors.append(
                "GEOIP2_DATABASE is set but the maxminddb package is not installed "
                "(pip install 'wagtail-tailored[geoip]')."
            )
        if not os.path.isfile(path):
            errors.append(f"GEOIP2_DATABASE {path!r} is not a readable file.")
    for name in (
        "GEO_COUNTRY_HEADER",
        "GEO_REGION_HEADER",
        "GEO_CITY_HEADER",
        "GEO_CLIENT_IP_HEADER",
    ):
        value = settings.get(name)
        if value is not None and not (isinstance(value, str) and value.strip()):
            errors.append(f"{name} must be a header name or None.")
    hops = settings.get("GEO_TRUSTED_PROXY_COUNT", 1)
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 1:
        errors.append("GEO_TRUSTED_PROXY_COUNT must be a whole number of at least 1.")
    return errors


def zone_name_for(country: str | None, region: str | None) -> str | None:
    """The IANA timezone of a country or subdivision when it has exactly one; None otherwise
    (then the caller asks the browser's client hint rather than guess)."""
    if region in SUBDIVISION_ZONES:
        return SUBDIVISION_ZONES[region]  # None where the subdivision itself is split
    if country is None:
        return None
    if zone := COUNTRY_ZONES.get(country):
        return zone
    # A multi-timezone country whose exceptions are all listed: a known subdivision not among
    # them is on the main zone.
    return MAINLAND_ZONES.get(country) if region is not None else None


def dominant_zone_name(country: str | None) -> str | None:
    """The zone most of a country's people live in: its only zone, or the main zone of a
    multi-zone country where a clear majority lives on it; None where no zone holds most of the
    people (the United States: about 47% on Eastern time) or the country is unknown."""
    if country is None:
        return None
    return COUNTRY_ZONES.get(country) or MAINLAND_ZONES.get(country) or DOMINANT_ZONES.get(country)


# fmt: off
# Countries with one timezone today (tzdata's zone.tab, zones of one country compared over two
# years of offsets; China's single official time included).
COUNTRY_ZONES: dict[str, str] = {
    "AD": "Europe/Andorra", "AE": "Asia/Dubai", "AF": "Asia/Kabul", "AG": "America/Antigua",
    "AI": "America/Anguilla", "AL": "Europe/Tirane", "AM": "Asia/Yerevan", "AO": "Africa/Luanda",
    "AR": "America/Argentina/Buenos_Aires", "AS": "Pacific/Pago_Pago", "AT": "Europe/Vienna",
    "AW": "America/Aruba", "AX": "Europe/Mariehamn", "AZ": "Asia/Baku", "BA": "Europe/Sarajevo",
    "BB": "America/Barbados", "BD": "Asia/Dhaka", "BE": "Europe/Brussels",
    "BF": "Africa/Ouagadougou", "BG": "Europe/Sofia", "BH": "Asia/Bahrain",
    "BI": "Africa/Bujumbura", "BJ": "Africa/Porto-Novo", "BL": "America/St_Barthelemy",
    "BM": "Atlantic/Bermuda", "BN": "Asia/Brunei", "BO": "America/La_Paz",
    "BQ": "America/Kralendijk", "BS": "America/Nassau", "BT": "Asia/Thimphu",
    "BW": "Africa/Gaborone", "BY": "Europe/Minsk", "BZ": "America/Belize", "CC": "Indian/Cocos",
    "CF": "Africa/Bangui", "CG": "Africa/Brazzaville", "CH": "Europe/Zurich",
    "CI": "Africa/Abidjan", "CK": "Pacific/Rarotonga", "CM": "Africa/Douala",
    "CN": "Asia/Shanghai", "CO": "America/Bogota", "CR": "America/Costa_Rica",
    "CU": "America/Havana", "CV": "Atlantic/Cape_Verde", "CW": "America/Curacao",
    "CX": "Indian/Christmas", "CY": "Asia/Nicosia", "CZ": "Europe/Prague", "DE": "Europe/Berlin",
    "DJ": "Africa/Djibouti", "DK": "Europe/Copenhagen", "DM": "America/Dominica",
    "DO": "America/Santo_Domingo", "DZ": "Africa/Algiers", "EE": "Europe/Tallinn",
    "EG": "Africa/Cairo", "EH": "Africa/El_Aaiun", "ER": "Africa/Asmara",
    "ET": "Africa/Addis_Ababa", "FI": "Europe/Helsinki", "FJ": "Pacific/Fiji",
    "FK": "Atlantic/Stanley", "FO": "Atlantic/Faroe", "FR": "Europe/Paris",
    "GA": "Africa/Libreville", "GB": "Europe/London", "GD": "America/Grenada",
    "GE": "Asia/Tbilisi", "GF": "America/Cayenne", "GG": "Europe/Guernsey", "GH": "Africa/Accra",
    "GI": "Europe/Gibraltar", "GM": "Africa/Banjul", "GN": "Africa/Conakry",
    "GP": "America/Guadeloupe", "GQ": "Africa/Malabo", "GR": "Europe/Athens",
    "GS": "Atlantic/South_Georgia", "GT": "America/Guatemala", "GU": "Pacific/Guam",
    "GW": "Africa/Bissau", "GY": "America/Guyana", "HK": "Asia/Hong_Kong",
    "HN": "America/Tegucigalpa", "HR": "Europe/Zagreb", "HT": "America/Port-au-Prince",
    "HU": "Europe/Budapest", "IE": "Europe/Dublin", "IL": "Asia/Jerusalem",
    "IM": "Europe/Isle_of_Man", "IN": "Asia/Kolkata", "IO": "Indian/Chagos", "IQ": "Asia/Baghdad",
    "IR": "Asia/Tehran", "IS": "Atlantic/Reykjavik", "IT": "Europe/Rome", "JE": "Europe/Jersey",
    "JM": "America/Jamaica", "JO": "Asia/Amman", "JP": "Asia/Tokyo", "KE": "Africa/Nairobi",
    "KG": "Asia/Bishkek", "KH": "Asia/Phnom_Penh", "KM": "Indian/Comoro", "KN": "America/St_Kitts",
    "KP": "Asia/Pyongyang", "KR": "Asia/Seoul", "KW": "Asia/Kuwait", "KY": "America/Cayman",
    "KZ": "Asia/Almaty", "LA": "Asia/Vientiane", "LB": "Asia/Beirut", "LC": "America/St_Lucia",
    "LI": "Europe/Vaduz", "LK": "Asia/Colombo", "LR": "Africa/Monrovia", "LS": "Africa/Maseru",
    "LT": "Europe/Vilnius", "LU": "Europe/Luxembourg", "LV": "Europe/Riga", "LY": "Africa/Tripoli",
    "MA": "Africa/Casablanca", "MC": "Europe/Monaco", "MD": "Europe/Chisinau",
    "ME": "Europe/Podgorica", "MF": "America/Marigot", "MG": "Indian/Antananarivo",
    "MH": "Pacific/Majuro", "MK": "Europe/Skopje", "ML": "Africa/Bamako", "MM": "Asia/Yangon",
    "MO": "Asia/Macau", "MP": "Pacific/Saipan", "MQ": "America/Martinique",
    "MR": "Africa/Nouakchott", "MS": "America/Montserrat", "MT": "Europe/Malta",
    "MU": "Indian/Mauritius", "MV": "Indian/Maldives", "MW": "Africa/Blantyre",
    "MY": "Asia/Kuala_Lumpur", "MZ": "Africa/Maputo", "NA": "Africa/Windhoek",
    "NC": "Pacific/Noumea", "NE": "Africa/Niamey", "NF": "Pacific/Norfolk", "NG": "Africa/Lagos",
    "NI": "America/Managua", "NL": "Europe/Amsterdam", "NO": "Europe/Oslo", "NP": "Asia/Kathmandu",
    "NR": "Pacific/Nauru", "NU": "Pacific/Niue", "OM": "Asia/Muscat", "PA": "America/Panama",
    "PE": "America/Lima", "PH": "Asia/Manila", "PK": "Asia/Karachi", "PL": "Europe/Warsaw",
    "PM": "America/Miquelon", "PN": "Pacific/Pitcairn", "PR": "America/Puerto_Rico",
    "PS": "Asia/Gaza", "PW": "Pacific/Palau", "PY": "America/Asuncion", "QA": "Asia/Qatar",
    "RE": "Indian/Reunion", "RO": "Europe/Bucharest", "RS": "Europe/Belgrade",
    "RW": "Africa/Kigali", "SA": "Asia/Riyadh", "SB": "Pacific/Guadalcanal", "SC": "Indian/Mahe",
    "SD": "Africa/Khartoum", "SE": "Europe/Stockholm", "SG": "Asia/Singapore",
    "SH": "Atlantic/St_Helena", "SI": "Europe/Ljubljana", "SJ": "Arctic/Longyearbyen",
    "SK": "Europe/Bratislava", "SL": "Africa/Freetown", "SM": "Europe/San_Marino",
    "SN": "Africa/Dakar", "SO": "Africa/Mogadishu", "SR": "America/Paramaribo",
    "SS": "Africa/Juba", "ST": "Africa/Sao_Tome", "SV": "America/El_Salvador",
    "SX": "America/Lower_Princes", "SY": "Asia/Damascus", "SZ": "Africa/Mbabane",
    "TC": "America/Grand_Turk", "TD": "Africa/Ndjamena", "TF": "Indian/Kerguelen",
    "TG": "Africa/Lome", "TH": "Asia/Bangkok", "TJ": "Asia/Dushanbe", "TK": "Pacific/Fakaofo",
    "TL": "Asia/Dili", "TM": "Asia/Ashgabat", "TN": "Africa/Tunis", "TO": "Pacific/Tongatapu",
    "TR": "Europe/Istanbul", "TT": "America/Port_of_Spain", "TV": "Pacific/Funafuti",
    "TW": "Asia/Taipei", "TZ": "Africa/Dar_es_Salaam", "UG": "Africa/Kampala",
    "UY": "America/Montevideo", "UZ": "Asia/Samarkand", "VA": "Europe/Vatican",
    "VC": "America/St_Vincent", "VE": "America/Caracas", "VG": "America/Tortola",
    "VI": "America/St_Thomas", "VN": "Asia/Ho_Chi_Minh", "VU": "Pacific/Efate",
    "WF": "Pacific/Wallis", "WS": "Pacific/Apia", "YE": "Asia/Aden", "YT": "Indian/Mayotte",
    "ZA": "Africa/Johannesburg", "ZM": "Africa/Lusaka", "ZW": "Africa/Harare",
}

_US = {
    "America/New_York": "CT DC DE FL GA MA MD ME NC NH NJ NY OH PA RI SC VA VT WV",
    "America/Chicago": "AL AR IA IL KS LA MN MO MS ND NE OK SD TN TX WI",
    "America/Denver": "CO MT NM UT WY",
    "America/Los_Angeles": "CA NV OR WA",
    "America/Detroit": "MI", "America/Kentucky/Louisville": "KY",
    "America/Indiana/Indianapolis": "IN", "America/Boise": "ID", "America/Phoenix": "AZ",
    "America/Anchorage": "AK", "Pacific/Honolulu": "HI", "America/Puerto_Rico": "PR",
    "Pacific/Guam": "GU", "America/St_Thomas": "VI", "Pacific/Pago_Pago": "AS",
    "Pacific/Saipan": "MP",
}
_CA = {
    "America/Toronto": "ON QC", "America/Vancouver": "BC", "America/Edmonton": "AB NT",
    "America/Regina": "SK", "America/Winnipeg": "MB", "America/Halifax": "NS PE",
    "America/Moncton": "NB", "America/St_Johns": "NL", "America/Whitehorse": "YT",
    "America/Iqaluit": "NU",
}
_AU = {
    "Australia/Sydney": "NSW ACT", "Australia/Melbourne": "VIC", "Australia/Brisbane": "QLD",
    "Australia/Adelaide": "SA", "Australia/Perth": "WA", "Australia/Hobart": "TAS",
    "Australia/Darwin": "NT",
}

# Subdivisions with their own zone; a multi-zone state takes the zone most of its people live
# in. None marks a subdivision split too evenly to choose (the client hint decides there).
SUBDIVISION_ZONES: dict[str, str | None] = {
    **{f"{cc}-{sub}": zone for cc, table in (("US", _US), ("CA", _CA), ("AU", _AU))
       for zone, subs in table.items() for sub in subs.split()},
    "ES-CN": "Atlantic/Canary", "ES-GC": "Atlantic/Canary", "ES-TF": "Atlantic/Canary",
    "PT-20": "Atlantic/Azores", "PT-30": "Atlantic/Madeira",
    "NZ-CIT": "Pacific/Chatham", "EC-W": "Pacific/Galapagos", "PG-NSB": "Pacific/Bougainville",
    "CL-MA": "America/Punta_Arenas", "CL-AI": "America/Coyhaique",
    "UA-43": "Europe/Simferopol", "UA-40": "Europe/Simferopol", "UA-14": None, "UA-09": None,
    "MX-BCN": "America/Tijuana", "MX-BCS": "America/Mazatlan", "MX-SIN": "America/Mazatlan",
    "MX-NAY": "America/Mazatlan", "MX-SON": "America/Hermosillo", "MX-CHH": "America/Chihuahua",
    "MX-ROO": "America/Cancun", "MX-TAM": None,
    "BR-AM": "America/Manaus", "BR-RR": "America/Boa_Vista", "BR-RO": "America/Porto_Velho",
    "BR-MT": "America/Cuiaba", "BR-MS": "America/Campo_Grande", "BR-AC": "America/Rio_Branco",
}

# Multi-zone countries whose other zones are all listed in SUBDIVISION_ZONES: any other known
# subdivision is on this zone. (Without a subdivision these countries stay unknown.)
MAINLAND_ZONES: dict[str, str] = {
    "ES": "Europe/Madrid", "PT": "Europe/Lisbon", "NZ": "Pacific/Auckland",
    "EC": "America/Guayaquil", "PG": "Pacific/Port_Moresby", "CL": "America/Santiago",
    "UA": "Europe/Kyiv", "MX": "America/Mexico_City", "BR": "America/Sao_Paulo",
}

# Further multi-zone countries where well over half of the people live on one zone (Ontario and
# Quebec; New South Wales, Victoria, the ACT and Tasmania; European Russia; Java and Sumatra;
# the Mongolian capital; Nuuk). Only the Accept-Language fallback uses these.
DOMINANT_ZONES: dict[str, str] = {
    "CA": "America/Toronto", "AU": "Australia/Sydney", "RU": "Europe/Moscow",
    "ID": "Asia/Jakarta", "MN": "Asia/Ulaanbaatar", "GL": "America/Nuuk",
}
# fmt: on
