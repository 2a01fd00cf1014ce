"""One PERSONALIZATION settings dict merged over defaults, cached, reset on setting_changed
(the django-debug-toolbar pattern)."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # Off: every PersonalizedBlock renders its fallback and no visitor is resolved.
    "ENABLED": True,
    "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore",
    # The site's product page model, "app_label.ModelName" (see tailored.products for the fields
    # it reads). None: no product blocks, catalog or product queries. CATEGORY_MODEL: the model of
    # the product's `category` field unless named here.
    "PRODUCT_MODEL": None,
    "CATEGORY_MODEL": None,
    "REDIS_URL": None,
    # How long anything about a visitor is kept (profiles, events, stream entries, experiment
    # memberships); `manage.py tailored_purge` enforces it. Data-rights audit rows (exports and
    # erasures, by digest or pseudonymous id) are kept AUDIT_RETENTION_DAYS, to show what was done.
    "RETENTION_DAYS": 90,
    "AUDIT_RETENTION_DAYS": 3 * 365,
    "MAX_BATCH_EVENTS": 100,
    "MAX_BATCH_BYTES": 64 * 1024,
    "CONSENT_COOKIE": "tl_consent",
    "VISITOR_COOKIE": "tl_vid",
    "TIMEZONE_COOKIE": "tl_tz",
    # How often a web process re-checks the segment table for edits made by other processes.
    "SEGMENT_REFRESH_SECONDS": 5.0,
    # How long a web process answers Wagtail's Site look-up for a host from memory
    # (tailored.site_cache); a Site edited in another process is seen within this. 0: off.
    "SITE_CACHE_SECONDS": 5.0,
    # How long a web process keeps a rendered variant fragment it read from or wrote to Redis in
    # its own memory (tailored.fragments): a fragment's key names its page revision, so a publish
    # changes the keys and nothing stale is served; this bounds what another process's drop
    # leaves here. 0: every page reads its fragments from Redis.
    "FRAGMENT_MEMORY_SECONDS": 60.0,
    # Ingestion: events per visitor per minute before 429; client event ids remembered this long.
    "RATE_LIMIT_PER_MINUTE": 600,
    "DEDUP_SECONDS": 24 * 3600,
    # The Redis Stream every accepted batch is appended to: entries older than RETENTION_DAYS go
    # on every append; this caps its length too (approximately) for a long outage of the workers.
    "STREAM_MAXLEN": 1_000_000,
    # Redis Cluster (issue 19; README "Redis Cluster"). REDIS_URL "redis+cluster://host:port,..."
    # names a cluster; so does any redis:// or rediss:// URL of one node with REDIS_CLUSTER True.
    "REDIS_CLUSTER": False,
    # Visitor shards: the event stream and the hot global keys (recent visitors, segment counts,
    # experiment and insight counters) split N ways by visitor, so no one cluster node takes
    # every write. 1 keeps the single stream `tl:v1:events`. Change it only with the stream
    # drained (README "Redis Cluster").
    "EVENT_STREAM_SHARDS": 1,
    # Worker: entries read per call, and how long a pending entry may sit before another worker claims it.
    "WORKER_BATCH": 100,
    "WORKER_CLAIM_IDLE_SECONDS": 60,
    # Cart abandonment: items added, no purchase within this many minutes.
    "CART_ABANDONMENT_MINUTES": 60,
    # Webhooks: [{"url": "https://...", "secret": "...", "topics": ["cart_abandoned"]}]
    "WEBHOOKS": [],
    "WEBHOOK_TIMEOUT_SECONDS": 5.0,
    "WEBHOOK_MAX_ATTEMPTS": 8,
    # Activation destinations (URLs typed in the admin) reach public addresses only; list the
    # private networks they may reach too, e.g. ["10.20.0.0/16"] for an internal CRM (tailored.outbound).
    "DESTINATION_PRIVATE_NETWORKS": [],
    # Sessions end after this much inactivity.
    "SESSION_GAP_SECONDS": 30 * 60,
    # When each daypart starts in the visitor's local time, e.g. {"morning": "06:00",
    # "afternoon": "12:00", "evening": "18:00", "night": "23:00"}; None: 05:00, 12:00, 17:00, 22:00.
    # A proxy computing the audience key (docs/deploy/) must use the same times.
    "DAYPARTS": None,
    # Geo: a trusted CDN header (e.g. CF-IPCountry, CloudFront-Viewer-Country) or a GeoIP2 file.
    # Behind no such CDN, set GEO_COUNTRY_HEADER to None: clients could send the header themselves.
    "GEO_COUNTRY_HEADER": "HTTP_CF_IPCOUNTRY",
    "GEO_REGION_HEADER": None,
    "GEO_CITY_HEADER": None,
    "GEOIP2_DATABASE": None,
    "GEO_CLIENT_IP_HEADER": None,
    "GEO_TRUSTED_PROXY_COUNT": 1,
    "REFERRER_INTERNAL_HOSTS": [],
    # Weather (an OpenWeather-compatible API): read from a cache that a refresh fills.
    "WEATHER_API_URL": None,
    "WEATHER_API_KEY": None,
    "WEATHER_REGIONS": {},
    "WEATHER_TIMEOUT_SECONDS": 0.3,
    "WEATHER_CACHE_SECONDS": 900,
    "WEATHER_LOCAL_CACHE_SECONDS": 60,
    "WEATHER_FETCH_ON_MISS": True,
    "WEATHER_BREAKER_FAILURES": 5,
    "WEATHER_BREAKER_COOLDOWN_SECONDS": 60.0,
    # Redis on the request path (tailored.redis_guard): each call's socket timeout; the circuit
    # breaker opens after this many consecutive failures or timeouts, skips Redis for the cool-down,
    # then a background PING decides; and a request that saw one failure, or waited this long on
    # Redis in total, skips Redis for the rest of the request. A hung Redis costs one timeout.
    "REDIS_SOCKET_TIMEOUT_SECONDS": 0.5,
    "REDIS_BREAKER_FAILURES": 1,
    "REDIS_BREAKER_COOLDOWN_SECONDS": 2.0,
    "REDIS_REQUEST_BUDGET_SECONDS": 0.5,
    # GraphQL limits (issue 6). Depth counts nested fields; cost is 1 per field, a list field's
    # selection multiplied by its first/last/limit/perPage argument (else GRAPHQL_DEFAULT_LIST_SIZE).
    "GRAPHQL_MAX_DEPTH": 12,
    "GRAPHQL_MAX_COST": 5000,
    "GRAPHQL_MAX_LIST_SIZE": 100,
    "GRAPHQL_DEFAULT_LIST_SIZE": 10,
    "GRAPHQL_MAX_DOCUMENT_CHARS": 50_000,
    # Tokens (names, punctuation, values, comments) parsed at most per document; past them the parser
    # stops and the request is refused with TOO_MANY_TOKENS before validation (issue 14 item 6). The
    # committed operations have at most 128, the full introspection query 183.
    "GRAPHQL_MAX_TOKENS": 2000,
    # Persisted operations: the documents in GRAPHQL_OPERATIONS_DIR (None: BASE_DIR/graphql/operations),
    # asked for by {"id": "<file stem or sha256 of the file>"}. Set GRAPHQL_PERSISTED_ONLY to True in
    # production so only those documents run.
    "GRAPHQL_PERSISTED_ONLY": False,
    "GRAPHQL_OPERATIONS_DIR": None,
    # Introspection (__schema, __type) for everyone: None follows DEBUG. Editors may always introspect;
    # headless developers otherwise use the committed graphql/schema.graphql.
    "GRAPHQL_INTROSPECTION": None,
    # Origins of headless frontends that may call /graphql/ from the browser, e.g.
    # ["https://shop.example.com"] (exact scheme://host[:port]; no wildcards, as credentials are allowed).
    "CORS_ORIGINS": [],
    "CORS_MAX_AGE": 3600,
    # Server-to-server API keys: verified keys are remembered per process this long (a revoked key
    # is refused by other processes after at most this delay); last_used_at is written at most this often.
    "API_KEY_CACHE_SECONDS": 5.0,
    "API_KEY_TOUCH_SECONDS": 60,
    # Trained models (issue 7): versioned artifacts under MODEL_DIR (None: BASE_DIR/var/models), the
    # last MODEL_KEEP_VERSIONS kept per model; web processes re-check for a new version this often.
    "MODEL_DIR": None,
    "MODEL_KEEP_VERSIONS": 5,
    "MODEL_RELOAD_SECONDS": 30.0,
    # Experiments (issue 9): CUPED's pre-period, the days before exposure over which a visitor's
    # primary-goal count is the covariate (keep it within RETENTION_DAYS: older counts are gone).
    "EXPERIMENT_CUPED_DAYS": 14,
    # Global holdout (issue 9 item 7): this percentage of consenting visitors always sees every
    # PersonalizedBlock's fallback, the baseline that measures what personalization is worth
    # (Reports -> Personalization lift). 0 turns it off: nobody held out, nothing counted. A
    # visitor's group is a hash of their id, so it is stable; changing the share moves visitors
    # across groups, so start a fresh measurement when you change it.
    "GLOBAL_HOLDOUT_PERCENT": 0,
    # The goal event types whose conversions the holdout report compares, once per visitor each.
    "GLOBAL_HOLDOUT_GOALS": ["click", "add_to_cart", "purchase"],
    # Insights (issue 17): component impressions, clicks and conversions per (page, block,
    # variant) x segment x device x country, counted by the worker into hourly Redis counters and
    # flushed into hourly and daily rows. Goal events are attributed to every variant the visitor
    # saw within the attribution window (any-touch) and to the last one seen (last-touch).
    "INSIGHTS_ENABLED": True,
    "INSIGHTS_GOALS": ["add_to_cart", "purchase", "signup"],
    "INSIGHTS_ATTRIBUTION_MINUTES": 30,
    # Hourly rows feed the alerts' seasonal baseline (same hours of previous weeks); daily rows
    # feed the report. Both are deleted by `tailored_purge` once older than these.
    "INSIGHTS_HOURLY_DAYS": 35,
    "INSIGHTS_DAILY_DAYS": 400,
    # Anomaly alerts: the last ALERT_BASELINE_WEEKS weeks' same hours are the baseline; a cell is
    # tested only with at least ALERT_MIN_IMPRESSIONS impressions in the tested hours and
    # ALERT_MIN_EXPECTED expected clicks; Benjamini-Hochberg at ALERT_FDR across one run's cells.
    "ALERT_BASELINE_WEEKS": 4,
    "ALERT_WINDOW_HOURS": 2,
    "ALERT_MIN_IMPRESSIONS": 200,
    "ALERT_MIN_EXPECTED": 10,
    "ALERT_FDR": 0.001,
    "ALERT_MIN_CHANGE": 0.2,
    "ALERT_EMAILS": [],
    # Tracking failure: events this hour below this share of the baseline's, or this many new
    # dead letters in an hour.
    "ALERT_TRACKING_DROP": 0.5,
    "ALERT_DEAD_LETTERS_PER_HOUR": 100,
    # Model monitoring: a score distribution whose population stability index against the
    # previous day's exceeds this raises a drift alert (0.1 small, 0.25 major shift).
    "DRIFT_PSI_THRESHOLD": 0.25,
    # ... and the recommender's current version whose CTR is below the previous version's by at
    # least ALERT_MIN_CHANGE, one-sided two-proportion test at MODEL_CTR_ALPHA, each version with
    # at least MODEL_CTR_MIN_IMPRESSIONS recommendation impressions in the hourly rows kept.
    "MODEL_CTR_ALPHA": 0.001,
    "MODEL_CTR_MIN_IMPRESSIONS": 1000,
    # /metrics in the Prometheus text format (the `metrics` extra): off unless enabled; then only
    # for a request bearing METRICS_TOKEN (Authorization: Bearer ...) or from METRICS_ALLOWED_IPS.
    "METRICS_ENABLED": False,
    "METRICS_TOKEN": None,
    "METRICS_ALLOWED_IPS": [],
    # Caching (issue 21): the Cache-Control of pages shared caches may keep (tailored.caching),
    # the request header a proxy or CDN puts the audience key in (None: no proxy computes one, so
    # pages that vary by audience stay private), and the page cache for personalized pages.
    "PUBLIC_CACHE_CONTROL": "public, max-age=0, s-maxage=300",
    "AUDIENCE_HEADER": "X-Tailored-Audience",
    # How long a rendered page stays in the decision-keyed page cache (tailored.blocks.page_cache);
    # 0 turns it off.
    "PAGE_CACHE_SECONDS": 300,
    # Recommendations (issue 22): the most recent distinct history items a request scores (cost
    # stays flat for long histories; every history item is still excluded), and how many item
    # ids per visitor tailored.seen_items keeps (viewed, carted, bought: never recommended).
    "RECOMMENDATION_MAX_HISTORY": 100,
    "SEEN_ITEMS_CAP": 1000,
}


@cache
def get_settings() -> dict[str, Any]:
    return {**DEFAULTS, **getattr(settings, "PERSONALIZATION", {})}


def get(name: str) -> Any:
    return get_settings()[name]


@cache
def get_profile_store():
    """The configured ProfileStore, built once per process."""
    store_class = import_string(get("PROFILE_STORE"))
    return store_class.from_settings(get_settings())


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "PERSONALIZATION":
        get_settings.cache_clear()
        get_profile_store.cache_clear()
