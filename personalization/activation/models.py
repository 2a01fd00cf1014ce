"""Activation's stored definitions (issue 20): traits that come in from a CRM, triggers that go
out to destinations, who a visitor is for a destination, and the log of every send.

Imported by tailored.models, so they belong to the `tailored` app and its migrations."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Trait(models.Model):
    """A CRM attribute the site declares (loyalty tier, account type, lifetime orders). Only
    declared keys are accepted; rules name them as `trait.<key>`."""

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        BOOLEAN = "boolean", _("Yes or no")
        CHOICE = "choice", _("One of a list")

    key = models.SlugField(
        max_length=64, unique=True, help_text=_("How rules and the API name it: trait.<key>, e.g. loyalty_tier.")
    )
    label = models.CharField(max_length=100, help_text=_("What editors see in the rule builder."))
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.TEXT)
    choices = models.JSONField(
        default=list, blank=True, help_text=_('For "one of a list": the allowed values, e.g. ["silver", "gold"].')
    )
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class VisitorTraits(models.Model):
    """The declared traits a CRM sent about one visitor (or logged-in user's visitor id): the
    record that export and erasure read; the profile store keeps a copy that rules read."""

    visitor_id = models.CharField(max_length=64, unique=True)
    values = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = _("visitor traits")


class KnownVisitor(models.Model):
    """Who a visitor is, for activation: logged in, or identified with `tailored.identify(email)`.
    The address is kept as a keyed hash (HMAC-SHA256); the clear address only with marketing
    consent, because a destination (an email) needs it."""

    visitor_id = models.CharField(max_length=64, unique=True)
    email_hash = models.CharField(max_length=64, db_index=True, blank=True)
    email = models.EmailField(blank=True)
    user_id = models.CharField(max_length=64, blank=True, help_text=_("The site's user id, for a logged-in visitor."))
    marketing = models.BooleanField(default=False, help_text=_("The visitor granted marketing: triggers may reach them."))
    identified_at = models.DateTimeField()


class Destination(models.Model):
    """Where a trigger's sends go: a signed webhook, an email, or a kind a site registers with
    `register_tailored_destination` (e.g. the generic "contact upsert + event" JSON API)."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=64, help_text=_("webhook, email, or a registered kind."))
    url = models.URLField(max_length=2048, blank=True, help_text=_("For webhooks and HTTP destinations."))
    secret = models.CharField(
        max_length=200, blank=True, help_text=_("Signs webhook bodies (HMAC-SHA256) or authenticates to the API.")
    )
    email_subject = models.CharField(max_length=200, blank=True)
    email_body = models.TextField(
        blank=True,
        help_text=_("A Django template; tokens: {{ recommended }}, {{ last_viewed }}, {{ cart }}, {{ trigger }}."),
    )
    options = models.JSONField(default=dict, blank=True, help_text=_("Settings of a registered destination kind."))
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Trigger(models.Model):
    """When to reach a visitor outside the website, evaluated by the stream workers as events
    arrive (never on the request path)."""

    class Kind(models.TextChoices):
        SEGMENT_ENTERED = "segment_entered", _("Entered a segment")
        SEGMENT_LEFT = "segment_left", _("Left a segment")
        SCORE_ABOVE = "score_above", _("A score rose above a threshold")
        CART_ABANDONED = "cart_abandoned", _("Abandoned a cart")
        BROWSE_ABANDONED = "browse_abandoned", _("Viewed a product repeatedly without adding it to the cart")
        BACK_IN_STOCK = "back_in_stock", _("A viewed product is back in stock")
        PRICE_DROP = "price_drop", _("A viewed product is cheaper")
        LOYALTY_MILESTONE = "loyalty_milestone", _("Reached a loyalty milestone")

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    segment = models.ForeignKey(
        "tailored.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("For segment entry and exit."),
    )
    params = models.JSONField(
        default=dict, blank=True,
        help_text=_("The kind's settings: score and threshold, minutes, views, purchases or lifetime value."),
    )
    condition = models.JSONField(
        null=True, blank=True, help_text=_("Optional: a rule the visitor must also match when it fires.")
    )
    cooldown_hours = models.PositiveIntegerField(
        default=24, help_text=_("Fire at most once per visitor in this many hours.")
    )
    quiet_start = models.TimeField(null=True, blank=True, help_text=_("No sends from this time..."))
    quiet_end = models.TimeField(null=True, blank=True, help_text=_("...until this time (site time zone)."))
    destination = models.ForeignKey(Destination, on_delete=models.PROTECT, related_name="triggers")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ActivationSend(models.Model):
    """One firing of a trigger for one visitor and its delivery: the outbox the workers send from
    (retries with backoff; given-up sends are the dead letters shown in the admin) and the log
    each visitor's export and erasure include. `idempotency_key` names the firing: a repeated
    evaluation never makes a second row, and destinations receive it to drop repeats."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed (dead letter)")
        SKIPPED = "skipped", _("Skipped")

    trigger = models.ForeignKey(Trigger, null=True, blank=True, on_delete=models.SET_NULL, related_name="sends")
    destination = models.ForeignKey(Destination, null=True, on_delete=models.SET_NULL, related_name="sends")
    visitor_id = models.CharField(max_length=64, db_index=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    test = models.BooleanField(default=False, help_text=_("Sent with the admin's 'send test' button."))
    created_at = models.DateTimeField(default=timezone.now, help_text=_("When the trigger fired."))
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["trigger", "visitor_id", "created_at"], name="tl_send_cooldown")]

    def __str__(self) -> str:
        return f"{self.trigger or 'test'} -> {self.destination} ({self.status})"
