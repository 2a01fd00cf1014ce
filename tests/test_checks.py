"""Misconfiguration is reported as system checks with stable ids."""

from tailored.checks import check_profile_store


def test_an_unimportable_store_is_e001(settings):
    settings.PERSONALIZATION = {"PROFILE_STORE": "tailored.profiles.nowhere.Store"}
    assert [e.id for e in check_profile_store(None)] == ["tailored.E001"]


def test_redis_without_a_url_is_e002(settings):
    settings.PERSONALIZATION = {"PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore", "REDIS_URL": None}
    assert [e.id for e in check_profile_store(None)] == ["tailored.E002"]


def test_the_defaults_pass(settings):
    settings.PERSONALIZATION = {}
    assert check_profile_store(None) == []


def test_a_missing_geoip_file_is_e003(settings, tmp_path):
    settings.PERSONALIZATION = {"GEOIP2_DATABASE": str(tmp_path / "missing.mmdb")}
    from tailored.checks import check_context_providers

    assert "tailored.E003" in [e.id for e in check_context_providers(None)]


def test_event_types_can_be_added_through_a_wagtail_hook():
    from wagtail import hooks

    from tailored.apps import PersonalizationConfig
    from tailored.events.schema import EVENT_TYPES, FieldSpec, validate_events

    def add(register):
        register("quote_request", {"product_id": FieldSpec(int, required=True, minimum=1)})

    with hooks.register_temporarily("register_tailored_event_types", add):
        PersonalizationConfig.ready(PersonalizationConfig.create("tailored"))
    try:
        events, rejected = validate_events([{"type": "quote_request", "id": "q1", "ts": 1_764_000_000_000, "product_id": 4}], 1_764_000_000)
        assert rejected == [] and events[0].item == "4"
    finally:
        EVENT_TYPES.pop("quote_request", None)


def test_measurement_settings_out_of_range_are_e005_to_e007(settings):
    from tailored.checks import check_measurement_settings

    settings.PERSONALIZATION = {}
    assert check_measurement_settings(None) == []
    settings.PERSONALIZATION = {"GLOBAL_HOLDOUT_PERCENT": 150, "GLOBAL_HOLDOUT_GOALS": ["purchase", "purchsae"], "EXPERIMENT_CUPED_DAYS": 120}
    errors = check_measurement_settings(None)
    assert [e.id for e in errors] == ["tailored.E005", "tailored.E006", "tailored.E007"]
    assert "purchsae" in errors[1].msg and "(90)" in errors[2].msg


def test_a_retention_period_that_is_not_a_positive_number_of_days_is_e009(settings):
    from tailored.checks import check_measurement_settings

    settings.PERSONALIZATION = {"RETENTION_DAYS": "90", "AUDIT_RETENTION_DAYS": 0}
    errors = check_measurement_settings(None)
    assert [e.id for e in errors] == ["tailored.E009", "tailored.E009", "tailored.E007"]
    assert "RETENTION_DAYS'] = '90'" in errors[0].msg and "AUDIT_RETENTION_DAYS'] = 0" in errors[1].msg


def test_dayparts_that_do_not_cover_the_day_are_e010(settings):
    from tailored.checks import check_measurement_settings

    settings.PERSONALIZATION = {"DAYPARTS": {"morning": "06:00", "afternoon": "12:00", "evening": "18:00", "night": "25:00"}}
    (error,) = check_measurement_settings(None)
    assert error.id == "tailored.E010" and "'night'] must be a time" in error.msg
    settings.PERSONALIZATION = {"DAYPARTS": {"morning": "06:00", "afternoon": "12:00", "evening": "18:00", "night": "23:00"}}
    assert check_measurement_settings(None) == []
