"""Stored definitions only; decisions live in tailored.core."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from tailored.core.rules import CompiledRule, RuleError, compile_rule
from tailored.events.schema import EVENT_TYPES

RULE_HELP = _(
    'A JSON condition, e.g. {"count": {"event": "page_view", "category": "electronics", '
    '"within_hours": 24}, "op": "gte", "value": 3} or {"field": "context.device", "op": "eq", '
    '"value": "mobile"}; combine with {"all": [...]}, {"any": [...]}, {"not": ...}.'
)


class Segment(models.Model):
    """A named audience: a rule over the visitor's profile and request context."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    priority = models.IntegerField(default=0, help_text=_("Higher priorities are listed first."))
    rule = models.JSONField(help_text=RULE_HELP)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name

    def compiled(self) -> CompiledRule:
        return compile_rule(self.rule, known_events=EVENT_TYPES)

    def clean(self) -> None:
        super().clean()
        try:
            self.compiled()
        except RuleError as error:
            raise ValidationError({"rule": str(error)}) from None

    def save(self, *args, **kwargs) -> None:
        # A rule is compiled when saved: a broken rule never reaches the request path.
        self.clean()
        super().save(*args, **kwargs)


class Event(models.Model):
    """A behavioural event persisted by the stream worker, for training and analytics.
    Unique per (visitor, client event id): redelivered stream entries are stored once."""

    visitor_id = models.CharField(max_length=64, db_index=True)
    event_id = models.CharField(max_length=64)
    type = models.CharField(max_length=64, db_index=True)
    ts = models.DateTimeField(db_index=True)
    category = models.CharField(max_length=64, blank=True)
    item = models.CharField(max_length=64, blank=True)
    url = models.CharField(max_length=2048, blank=True)
    attrs = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["visitor_id", "event_id"], name="tl_event_unique_per_visitor")]
        indexes = [
            models.Index(fields=["visitor_id", "ts"], name="tl_event_visitor_ts"),
            # The rule builder's "has any visitor had this category / item?" warnings (rule_values).
            models.Index(fields=["category"], name="tl_event_category"),
            models.Index(fields=["item"], name="tl_event_item"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.visitor_id[:8]})"


class DataRightsAudit(models.Model):
    """When a visitor's data was exported, erased or looked up by an editor (Settings → Visitors):
    what and when, by pseudonymous id only (by its digest once erased); `detail["by"]` names the
    editor who acted, if one did."""

    class Action(models.TextChoices):
        EXPORT = "export", _("Export")
        ERASE = "erase", _("Erase")
        LOOKUP = "lookup", _("Look-up by an editor")

    action = models.CharField(max_length=16, choices=Action.choices)
    visitor_id = models.CharField(max_length=64, db_index=True)
    at = models.DateTimeField(auto_now_add=True)
    detail = models.JSONField(default=dict, blank=True, help_text=_("Counts of what was exported or erased."))

    class Meta:
        ordering = ["-at"]
        permissions = [("look_up_visitors", "Can look up, export and erase a visitor's data")]


class PendingErasure(models.Model):
    """An erasure the workers complete: one asked for while Redis was unavailable (consent
    withdrawn; the cookie went at once), or the anonymous id of a visitor who logged in
    (services.link_login). Erased on the worker's turn (or, after an outage, by the next request
    that finds Redis healthy). In the database so no restart loses it."""

    visitor_id = models.CharField(max_length=64, unique=True)
    requested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["requested_at"]


class WebhookDelivery(models.Model):
    """One webhook call (e.g. cart abandonment) and its delivery state. Failed calls are retried
    with backoff and stay here until delivered or given up: never lost silently."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed (gave up)")

    topic = models.CharField(max_length=64, db_index=True)
    url = models.URLField(max_length=2048)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["next_attempt_at"]

    def __str__(self) -> str:
        return f"{self.topic} -> {self.url} ({self.status})"


class ApiKey(models.Model):
    """A key the server of a headless frontend sends (X-Tailored-Key) to act for its visitors
    (issue 6). Only the SHA-256 of the key is stored: the key itself is shown once, at creation."""

    name = models.CharField(max_length=100, help_text=_("Which frontend or server uses this key."))
    prefix = models.CharField(
        max_length=8, db_index=True, editable=False, help_text=_("The key's first 8 characters, to tell keys apart.")
    )
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    active = models.BooleanField(default=True, help_text=_("Revoked keys stay listed but are refused."))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class PersonaLabel(models.Model):
    """A persona found by `tailored_train` (issue 7, item 3). Rules name the slug, which stays put
    when an editor renames the persona; training fills in the rest and never overwrites a name."""

    slug = models.SlugField(max_length=64, unique=True, help_text=_("What segment rules use: profile.persona is this slug."))
    name = models.CharField(max_length=100, help_text=_("What editors see; rename freely."))
    description = models.TextField(blank=True, help_text=_("The behaviour that sets this persona apart, from the last training."))
    model_version = models.CharField(max_length=64, blank=True, editable=False)
    size = models.PositiveIntegerField(default=0, help_text=_("Training profiles in this persona at the last training."))
    active = models.BooleanField(default=True, help_text=_("Found by the current persona model."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-active", "-size", "name"]

    def __str__(self) -> str:
        return self.name


class HoldoutCount(models.Model):
    """Hourly counts of the global holdout (issue 9 item 7), written by `holdout.flush`, never a
    row per visitor. Goal "" holds the visitors first exposed that hour (`visitors`); a goal's row
    holds the conversions counted that hour (each visitor once per goal)."""

    class Group(models.TextChoices):
        HOLDOUT = "holdout", _("Holdout (fallbacks only)")
        PERSONALIZED = "personalized", _("Personalized")

    group = models.CharField(max_length=20, choices=Group.choices)
    goal = models.CharField(max_length=64, blank=True)
    hour = models.DateTimeField()
    visitors = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "goal", "hour"], name="tl_holdout_count_unique")]

    def __str__(self) -> str:
        return f"{self.group} {self.goal or 'visitors'} {self.hour:%Y-%m-%d %H}:00"


# -- Insights (issue 17) ----------------------------------------------------------------------------


class InsightCounts(models.Model):
    """What the worker counts per (page, block, variant) x segment x device x country: written only
    by `tailored.insights.counting` (flushed Redis counters, added with F()), never a row per event.
    Segment "" is every visitor; a visitor's impression also counts under each segment they are in."""

    page_id = models.PositiveIntegerField(default=0, help_text=_("0: a headless page tracker.js did not name."))
    block = models.CharField(max_length=64)
    variant = models.CharField(max_length=64)
    segment = models.CharField(max_length=64, blank=True)
    device = models.CharField(max_length=16, blank=True)
    country = models.CharField(max_length=2, blank=True)
    impressions = models.PositiveIntegerField(default=0)
    viewers = models.PositiveIntegerField(default=0, help_text=_("Unique viewers per hour, summed."))
    clicks = models.PositiveIntegerField(default=0, help_text=_("Page views in which the block was clicked."))
    conversions = models.PositiveIntegerField(default=0, help_text=_("Any-touch: goal events after seeing it, within the window."))
    last_touch_conversions = models.PositiveIntegerField(default=0)
    view_ms = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class InsightHour(InsightCounts):
    """Hourly rows: the alerts' seasonal baseline and the report's charts of short ranges."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "page_id", "block", "variant", "segment", "device", "country"], name="tl_insight_hour_unique"
            )
        ]
        indexes = [models.Index(fields=["segment", "hour"], name="tl_insight_hour_seg")]
        # Insights, the lift report, experiment results and alerts (tailored.report_access).
        permissions = [("view_personalization_reports", "Can view the personalization reports")]


class InsightDay(InsightCounts):
    """Daily rows (UTC days), added in the same transaction as the hourly ones: the report reads
    these, so 90 days cost 90 rows per cell, not 2,160."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "page_id", "block", "variant", "segment", "device", "country"], name="tl_insight_day_unique"
            )
        ]
        # Covering: the report's grouped sums read the index alone, never the table (90 days of a
        # big site: 207 ms instead of 256 for the blocks' figures on SQLite, bench/insights.py).
        indexes = [
            models.Index(
                fields=[
                    "segment", "day", "page_id", "block", "variant", "device",
                    "impressions", "viewers", "clicks", "conversions", "last_touch_conversions", "view_ms",
                ],
                name="tl_insight_day_cover",
            )
        ]


class TrafficHour(models.Model):
    """Events the worker processed and dead-lettered per hour: the tracking-failure alerts' input."""

    hour = models.DateTimeField(unique=True)
    events = models.PositiveIntegerField(default=0)
    dead_letters = models.PositiveIntegerField(default=0)


class ScoreDay(models.Model):
    """A model score's distribution on one day (issue 17 item 5): counts per decile bin of [0, 1],
    for the report's chart and the drift alert's population stability index."""

    name = models.CharField(max_length=64, help_text=_("persona, or a propensity score's name"))
    model_version = models.CharField(max_length=64, blank=True)
    day = models.DateField()
    bins = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "day"], name="tl_score_day_unique")]


class Alert(models.Model):
    """An anomaly the worker found (issue 17 item 4): shown on the dashboard and in the Insights
    report, sent to webhooks (topic `insights_alert`) and by email."""

    class Kind(models.TextChoices):
        CTR = "ctr", _("Click-through rate")
        CONVERSION = "conversion", _("Conversion rate")
        TRACKING = "tracking", _("Tracking volume")
        DEAD_LETTERS = "dead_letters", _("Dead letters")
        DRIFT = "drift", _("Score drift")
        MODEL_CTR = "model_ctr", _("Recommendation CTR")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # One open alert per cell and kind: the key names the cell ("page|block|variant|segment|device").
    key = models.CharField(max_length=300)
    direction = models.CharField(max_length=8, help_text=_("drop or spike"))
    since = models.DateTimeField(help_text=_("The first hour of the anomalous window."))
    baseline = models.FloatField()
    observed = models.FloatField()
    p_value = models.FloatField(null=True, blank=True)
    message = models.TextField()
    link = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "key", "created_at"], name="tl_alert_cell")]

    def __str__(self) -> str:
        return self.message


# Activation (issue 20): defined in their own module, registered with this app here.
from tailored.activation.models import (  # noqa: E402,F401
    ActivationSend,
    Destination,
    KnownVisitor,
    Trait,
    Trigger,
    VisitorTraits,
)
