"""Misconfiguration reported as system checks with stable ids."""

from django.core.checks import Error, register
from django.utils.module_loading import import_string

from personalization import conf


@register()
def check_profile_store(app_configs, **kwargs):
    path = conf.get("PROFILE_STORE")
    try:
        import_string(path)
    except ImportError as error:
        return [
            Error(
                f"PERSONALIZATION['PROFILE_STORE'] = {path!r} cannot be imported: {error}",
                hint="Use personalization.profiles.memory.MemoryProfileStore or "
                "personalization.profiles.redis.RedisProfileStore.",
                id="personalization.E001",
            )
        ]
    if path.endswith("RedisProfileStore") and not conf.get("REDIS_URL"):
        return [
            Error(
                "RedisProfileStore is configured but PERSONALIZATION['REDIS_URL'] is empty.",
                hint="Set REDIS_URL, e.g. redis://127.0.0.1:6379/0.",
                id="personalization.E002",
            )
        ]
    return []


@register()
def check_context_providers(app_configs, **kwargs):
    """Geo and weather settings that cannot work (a missing GeoIP file, a weather URL without a key...)."""
    from personalization.context import geo, weather

    return [Error(message, id="personalization.E003") for message in geo.configuration_errors()] + [
        Error(message, id="personalization.E004") for message in weather.configuration_errors()
    ]
