"""Geo from trusted CDN headers and from a GeoIP2 database file; never guessed."""

from __future__ import annotations

import logging

import pytest
from django.test import RequestFactory

from tailored.context.geo import (
    NO_GEO,
    GeoFacts,
    city_name,
    client_ip,
    configuration_errors,
    country_code,
    geo_from_request,
    meta_key,
    open_database,
    region_code,
    zone_name_for,
)

factory = RequestFactory()


def geo(settings, config, **meta):
    settings.PERSONALIZATION = config
    return geo_from_request(factory.get("/", **meta))


# Headers


def test_the_default_header_is_cloudflares_country(settings):
    assert geo(settings, {}, HTTP_CF_IPCOUNTRY="de") == GeoFacts("DE", None, None)


def test_without_the_header_there_is_no_geo(settings):
    assert geo(settings, {}) is NO_GEO


def test_a_disabled_header_is_ignored_even_when_sent(settings):
    assert geo(settings, {"GEO_COUNTRY_HEADER": None}, HTTP_CF_IPCOUNTRY="DE") is NO_GEO


@pytest.mark.parametrize("value", ["XX", "T1", "A1", "ZZ", "EU", "D", "DEU", "1A", "", "  ", "Ä1", "de;x"])
def test_garbage_and_unknown_countries_mean_unknown(settings, value):
    assert geo(settings, {}, HTTP_CF_IPCOUNTRY=value) is NO_GEO


def test_uk_is_normalized_to_gb():
    assert country_code(" uk ") == "GB"


@pytest.mark.parametrize("name", ["CloudFront-Viewer-Country", "HTTP_CLOUDFRONT_VIEWER_COUNTRY", "cloudfront-viewer-country"])
def test_header_names_may_be_given_either_way(settings, name):
    config = {"GEO_COUNTRY_HEADER": name}
    assert geo(settings, config, HTTP_CLOUDFRONT_VIEWER_COUNTRY="US").country == "US"
    assert geo(settings, config, HTTP_CF_IPCOUNTRY="US") is NO_GEO  # only the configured header counts
    assert meta_key(name) == "HTTP_CLOUDFRONT_VIEWER_COUNTRY"


def test_region_and_city_headers(settings):
    config = {
        "GEO_COUNTRY_HEADER": "X-Vercel-IP-Country",
        "GEO_REGION_HEADER": "X-Vercel-IP-Country-Region",
        "GEO_CITY_HEADER": "X-Vercel-IP-City",
    }
    facts = geo(
        settings,
        config,
        HTTP_X_VERCEL_IP_COUNTRY="US",
        HTTP_X_VERCEL_IP_COUNTRY_REGION="ca",
        HTTP_X_VERCEL_IP_CITY="San%20Francisco",
    )
    assert facts == GeoFacts("US", "US-CA", "San Francisco")


def test_a_region_header_alone_carries_its_country(settings):
    facts = geo(settings, {"GEO_COUNTRY_HEADER": None, "GEO_REGION_HEADER": "X-Region"}, HTTP_X_REGION="GB-ENG")
    assert facts == GeoFacts("GB", "GB-ENG", None)


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("CA", "US", "US-CA"),
        ("us-ca", "US", "US-CA"),
        ("ENG", "GB", "GB-ENG"),
        ("GB-ENG", None, "GB-ENG"),
        ("CA", None, None),  # a bare subdivision needs its country
        ("DE-BY", "FR", None),  # disagreeing sources: trust neither
        ("TOOLONG", "US", None),
        ("C A", "US", None),
        ("", "US", None),
        ("XX-12", None, None),
    ],
)
def test_region_codes(value, country, expected):
    assert region_code(value, country) == expected


def test_city_names_are_decoded_and_bounded():
    assert city_name("Zürich".encode().decode("latin-1")) == "Zürich"  # WSGI hands UTF-8 over as latin-1
    assert city_name("  New   York ") == "New York"
    assert city_name("S%C3%A3o%20Paulo") == "São Paulo"
    assert city_name("x" * 200) is None
    assert city_name("bad\x00city") is None
    assert city_name("") is None


def test_the_city_without_a_country_is_dropped(settings):
    config = {"GEO_CITY_HEADER": "X-City"}
    assert geo(settings, config, HTTP_X_CITY="Paris") is NO_GEO


# GeoIP2 database


@pytest.fixture
def mmdb(tmp_path):
    """A small GeoIP2-City-shaped database written with mmdb-writer (tests only)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"country": {"iso_code": "GB"}, "subdivisions": [{"iso_code": "ENG"}], "city": {"names": {"en": "London"}}},
    )
    writer.insert_network(IPSet(["2a02:c7f::/32"]), {"country": {"iso_code": "DE"}})
    writer.insert_network(
        IPSet(["185.1.2.0/24"]),
        {"country": {"iso_code": "DE"}, "subdivisions": [{"iso_code": "BY"}], "city": {"names": {"en": "München"}}},
    )
    writer.insert_network(IPSet(["89.160.20.0/24"]), {"country": {"iso_code": "XX"}})
    path = tmp_path / "city.mmdb"
    writer.to_db_file(str(path))
    return str(path)


def test_database_lookup_by_remote_addr(settings, mmdb):
    config = {"GEO_COUNTRY_HEADER": None, "GEOIP2_DATABASE": mmdb}
    assert geo(settings, config, REMOTE_ADDR="81.2.69.142") == GeoFacts("GB", "GB-ENG", "London")
    assert geo(settings, config, REMOTE_ADDR="2a02:c7f:1::5") == GeoFacts("DE", None, None)
    assert geo(settings, config, REMOTE_ADDR="185.1.2.3") == GeoFacts("DE", "DE-BY", "München")
    assert geo(settings, config, REMOTE_ADDR="8.8.8.8") is NO_GEO  # not in the database
    assert geo(settings, config, REMOTE_ADDR="89.160.20.1") is NO_GEO  # an unknown marker


def test_a_valid_header_wins_over_the_database(settings, mmdb):
    config = {"GEOIP2_DATABASE": mmdb}
    assert geo(settings, config, REMOTE_ADDR="81.2.69.142", HTTP_CF_IPCOUNTRY="FR").country == "FR"
    assert geo(settings, config, REMOTE_ADDR="81.2.69.142", HTTP_CF_IPCOUNTRY="XX").country == "GB"


def test_the_client_address_from_a_trusted_proxy_header(settings, mmdb):
    config = {"GEO_COUNTRY_HEADER": None, "GEOIP2_DATABASE": mmdb, "GEO_CLIENT_IP_HEADER": "X-Forwarded-For"}
    # The proxy appends the address it saw; anything to its left is the client's own claim.
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "2a02:c7f::9, 81.2.69.142"}
    assert geo(settings, config, **meta).country == "GB"
    config["GEO_TRUSTED_PROXY_COUNT"] = 2
    assert geo(settings, config, **meta).country == "DE"
    config["GEO_TRUSTED_PROXY_COUNT"] = 3
    assert geo(settings, config, **meta) is NO_GEO  # fewer hops than trusted proxies: no address


@pytest.mark.parametrize("raw", ["", "not-an-ip", "127.0.0.1", "10.1.2.3", "192.168.0.1", "::1"])
def test_unusable_client_addresses_are_not_looked_up(raw):
    assert client_ip({"REMOTE_ADDR": raw}, {}) is None


def test_the_address_is_never_logged(settings, mmdb, caplog):
    caplog.set_level(logging.DEBUG)
    geo(settings, {"GEOIP2_DATABASE": mmdb}, REMOTE_ADDR="81.2.69.142")
    geo(settings, {"GEOIP2_DATABASE": mmdb + ".missing"}, REMOTE_ADDR="81.2.69.142")
    assert "81.2.69" not in caplog.text


def test_an_ipv6_address_in_an_ipv4_database_is_unknown(settings, tmp_path):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=4)
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "GB"}})
    path = str(tmp_path / "v4.mmdb")
    writer.to_db_file(path)
    config = {"GEO_COUNTRY_HEADER": None, "GEOIP2_DATABASE": path}
    assert geo(settings, config, REMOTE_ADDR="2a02:c7f::1") is NO_GEO
    assert geo(settings, config, REMOTE_ADDR="81.2.69.1").country == "GB"


def test_a_missing_or_broken_database_costs_geo_not_the_page(settings, tmp_path, caplog):
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"not a database")
    for path in (str(tmp_path / "missing.mmdb"), str(broken)):
        assert geo(settings, {"GEOIP2_DATABASE": path}, REMOTE_ADDR="81.2.69.142") is NO_GEO
        assert open_database(path) is None
    assert "cannot open GEOIP2_DATABASE" in caplog.text


def test_configuration_errors(tmp_path, mmdb):
    assert configuration_errors({"GEOIP2_DATABASE": mmdb}) == []
    assert configuration_errors({}) == []
    missing = configuration_errors({"GEOIP2_DATABASE": str(tmp_path / "nope.mmdb")})
    assert len(missing) == 1 and "not a readable file" in missing[0]
    assert "header name" in configuration_errors({"GEO_REGION_HEADER": ""})[0]
    assert "at least 1" in configuration_errors({"GEO_TRUSTED_PROXY_COUNT": "2"})[0]


def test_configuration_error_without_maxminddb(monkeypatch, mmdb):
    import sys

    monkeypatch.setitem(sys.modules, "maxminddb", None)  # as if the `geoip` extra were not installed
    errors = configuration_errors({"GEOIP2_DATABASE": mmdb})
    assert len(errors) == 1 and "maxminddb" in errors[0]
    open_database.cache_clear()
    assert open_database(mmdb) is None
    open_database.cache_clear()


# Timezones


@pytest.mark.parametrize(
    ("country", "region", "zone"),
    [
        ("DE", None, "Europe/Berlin"),
        ("JP", "JP-13", "Asia/Tokyo"),
        ("US", None, None),  # several zones: no guess
        ("US", "US-CA", "America/Los_Angeles"),
        ("US", "US-NY", "America/New_York"),
        ("US", "US-ZZ", None),
        ("CA", "CA-BC", "America/Vancouver"),
        ("AU", "AU-WA", "Australia/Perth"),
        ("ES", None, None),
        ("ES", "ES-CN", "Atlantic/Canary"),
        ("ES", "ES-MD", "Europe/Madrid"),
        ("MX", "MX-TAM", None),  # split too evenly
        ("RU", "RU-MOW", None),
        (None, None, None),
    ],
)
def test_zone_for_country_and_region(country, region, zone):
    assert zone_name_for(country, region) == zone
