"""Misconfiguration reported as system checks with stable ids."""

import hashlib

from django.core.checks import Error, Tags, register
from django.utils.module_loading import import_string

from tailored import conf


@register()
def check_profile_store(app_configs, **kwargs):
    path = conf.get("PROFILE_STORE")
    try:
        import_string(path)
    except ImportError as error:
        return [
            Error(
                f"PERSONALIZATION['PROFILE_STORE'] = {path!r} cannot be imported: {error}",
                hint="Use tailored.profiles.memory.MemoryProfileStore or "
                "tailored.profiles.redis.RedisProfileStore.",
                id="tailored.E001",
            )
        ]
    if path.endswith("RedisProfileStore") and not conf.get("REDIS_URL"):
        return [
            Error(
                "RedisProfileStore is configured but PERSONALIZATION['REDIS_URL'] is empty.",
                hint="Set REDIS_URL, e.g. redis://127.0.0.1:6379/0.",
                id="tailored.E002",
            )
        ]
    return []


@register()
def check_redis_cluster(app_configs, **kwargs):
    """EVENT_STREAM_SHARDS names the key layout every process must agree on (issue 19)."""
    shards = conf.get("EVENT_STREAM_SHARDS")
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 1024:
        return [
            Error(
                f"PERSONALIZATION['EVENT_STREAM_SHARDS'] = {shards!r} is not a whole number from 1 to 1024.",
                hint="1 on a single Redis; on Redis Cluster, the number of masters or a multiple of it.",
                id="tailored.E011",
            )
        ]
    return []


@register()
def check_context_providers(app_configs, **kwargs):
    """Geo and weather settings that cannot work (a missing GeoIP file, a weather URL without a key...)."""
    from tailored.context import geo, weather

    return [Error(message, id="tailored.E003") for message in geo.configuration_errors()] + [
        Error(message, id="tailored.E004") for message in weather.configuration_errors()
    ]


@register()
def check_destination_networks(app_configs, **kwargs):
    """The private networks activation destinations may reach (tailored.outbound)."""
    from tailored import outbound

    return [Error(message, id="tailored.E014") for message in outbound.setting_errors()]


@register()
def check_measurement_settings(app_configs, **kwargs):
    """The global holdout and CUPED settings: a share outside 0-100 would otherwise be clamped
    silently, an unknown goal never counted, and a CUPED pre-period longer than the retention
    period would read covariates the profiles no longer hold."""
    from tailored.events.schema import EVENT_TYPES

    errors = []
    share = conf.get("GLOBAL_HOLDOUT_PERCENT")
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 100:
        errors.append(Error(
            f"PERSONALIZATION['GLOBAL_HOLDOUT_PERCENT'] = {share!r} is not a number from 0 to 100.",
            hint="0 turns the global holdout off; 5 keeps 5% of consenting visitors on fallback content.",
            id="tailored.E005",
        ))
    unknown = [goal for goal in conf.get("GLOBAL_HOLDOUT_GOALS") or () if goal not in EVENT_TYPES]
    if unknown:
        errors.append(Error(
            f"PERSONALIZATION['GLOBAL_HOLDOUT_GOALS'] names unknown event types: {', '.join(map(str, unknown))}.",
            hint=f"Known event types: {', '.join(sorted(EVENT_TYPES))}.",
            id="tailored.E006",
        ))
    for name in ("RETENTION_DAYS", "AUDIT_RETENTION_DAYS"):
        value = conf.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(Error(
                f"PERSONALIZATION['{name}'] = {value!r} is not a whole number of days of at least 1.",
                hint="RETENTION_DAYS defaults to 90 and AUDIT_RETENTION_DAYS to 1095; tailored_purge enforces both.",
                id="tailored.E009",
            ))
    errors += _daypart_errors()
    days, retention = conf.get("EXPERIMENT_CUPED_DAYS"), conf.get("RETENTION_DAYS")
    retention = retention if isinstance(retention, int) else 0  # E009 says what is wrong with it
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= retention:
        errors.append(Error(
            f"PERSONALIZATION['EXPERIMENT_CUPED_DAYS'] = {days!r} must be a whole number of days from 1 to RETENTION_DAYS ({retention}).",
            hint="Profiles keep daily counts for RETENTION_DAYS; 14 is the default.",
            id="tailored.E007",
        ))
    return errors


# Memory settings read on every request: a value that is not a number would fail each.
MEMORY_SECONDS = {
    "SITE_CACHE_SECONDS": ("tailored.E012", "5 (the default) answers Wagtail's Site look-up for a host from memory for 5 seconds; 0 turns that off."),
    "FRAGMENT_MEMORY_SECONDS": ("tailored.E013", "60 (the default) keeps a page's fragments read from Redis in the process for a minute; 0 reads them from Redis on every page."),
}


@register()
def check_memory_seconds(app_configs, **kwargs):
    """SITE_CACHE_SECONDS and FRAGMENT_MEMORY_SECONDS: numbers of seconds of 0 or more."""
    errors = []
    for name, (error_id, hint) in MEMORY_SECONDS.items():
        seconds = conf.get(name)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            errors.append(Error(f"PERSONALIZATION['{name}'] = {seconds!r} is not a number of seconds of 0 or more.", hint=hint, id=error_id))
    return errors


def _daypart_errors() -> list[Error]:
    from tailored.core.context import daypart_starts

    starts = conf.get("DAYPARTS")
    if starts is None:
        return []
    try:
        daypart_starts(starts if isinstance(starts, dict) else {})
    except ValueError as error:
        hint = 'For example {"morning": "06:00", "afternoon": "12:00", "evening": "18:00", "night": "23:00"}.'
        return [Error(f"PERSONALIZATION['DAYPARTS'] = {starts!r}: {error}.", hint=hint, id="tailored.E010")]
    return []


# The SHA-256 of the key the demo settings once shipped: published, so anyone could sign a `tl_vid`
# cookie or compute a logged-in user's visitor id (services.user_visitor_id) with it. A digest, so
# the wheel never carries the key itself (tests/integration checks that).
SHIPPED_DEFAULT_SECRET_KEY_SHA256 = "ebdc66155541f8aeac337bf3cb41343466971a48635d44d5274ad340bb43b56b"


@register(Tags.security)
def check_secret_key(app_configs, **kwargs):
    """Refuse the shipped default SECRET_KEY outside DEBUG: it signs visitor ids."""
    from django.conf import settings

    key = getattr(settings, "SECRET_KEY", None)
    if settings.DEBUG or not isinstance(key, str):
        return []
    if hashlib.sha256(key.encode()).hexdigest() != SHIPPED_DEFAULT_SECRET_KEY_SHA256:
        return []
    return [
        Error(
            "SECRET_KEY is the default shipped with Tailored's demo settings; with it anyone can forge "
            "visitor cookies and compute logged-in users' visitor ids, and so read their data.",
            hint="Set DJANGO_SECRET_KEY to a long random value (python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or remove the hard-coded key so the demo settings make one in var/secret_key.",
            id="tailored.E008",
        )
    ]
