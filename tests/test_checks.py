"""Misconfiguration is reported as system checks with stable ids."""

from personalization.checks import check_profile_store


def test_an_unimportable_store_is_e001(settings):
    settings.PERSONALIZATION = {"PROFILE_STORE": "personalization.profiles.nowhere.Store"}
    assert [e.id for e in check_profile_store(None)] == ["personalization.E001"]


def test_redis_without_a_url_is_e002(settings):
    settings.PERSONALIZATION = {"PROFILE_STORE": "personalization.profiles.redis.RedisProfileStore", "REDIS_URL": None}
    assert [e.id for e in check_profile_store(None)] == ["personalization.E002"]


def test_the_defaults_pass(settings):
    settings.PERSONALIZATION = {}
    assert check_profile_store(None) == []
