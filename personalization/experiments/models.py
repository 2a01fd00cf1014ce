"""Experiments as editors define them (edited in the page editor), and their counts.

Only definitions and aggregate counts live here: who saw which arm is in the profile store
(the sticky assignment) and in the counters' Redis keys, never in these tables.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.admin.panels import (
    FieldPanel,
    FieldRowPanel,
    InlinePanel,
    MultiFieldPanel,
    PageChooserPanel,
)
from wagtail.models import Orderable

from tailored.events.schema import EVENT_TYPES

from .panels import ResultsLinkPanel

CONTROL = "control"
HOLDOUT = "holdout"  # the group kept on control and analysed apart (never an arm key)
FALLBACK = "fallback"
ARM_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}\Z")
# A factorial experiment's arm is a cell: "factor=level,factor=level" (e.g. "headline=a,button=green").
_NAME = r"[a-z0-9][a-z0-9_-]*"
CELL_KEY = re.compile(rf"^{_NAME}={_NAME}(,{_NAME}={_NAME})+\Z")


def parse_cell(key: str) -> dict[str, str] | None:
    """A factorial arm key as {factor: level} (in the key's order), or None for a plain arm key."""
    if not CELL_KEY.match(key or ""):
        return None
    pairs = [part.split("=", 1) for part in key.split(",")]
    cell = dict(pairs)
    return cell if len(cell) == len(pairs) else None  # a factor named twice is not a cell


class Experiment(ClusterableModel):
    """A randomized comparison of arms on one page. The first arm is the control."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        FINISHED = "finished", "Finished"

    class Allocation(models.TextChoices):
        FIXED = "fixed", "Fixed weights"
        THOMPSON = "thompson", "Thompson sampling (bandit)"

    class Target(models.TextChoices):
        VARIANTS = "variants", "The variants of a personalized block"
        BLOCK = "block", "An experiment block's alternatives"
        PAGE = "page", "Whole-page alternatives"

    page = ParentalKey("wagtailcore.Page", on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=120)
    key = models.SlugField(
        max_length=64, unique=True, help_text="Stable identifier: stored with each visitor's arm; an experiment block names it."
    )
    seed = models.CharField(
        max_length=64, blank=True, help_text="Hash seed; empty means the key. A new seed reshuffles new visitors."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Optional: nobody enters before this.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Optional: everyone sees the control after this.")
    traffic_percent = models.PositiveSmallIntegerField(
        default=100, validators=[MaxValueValidator(100)], help_text="Share of eligible visitors who enter the test."
    )
    holdout_percent = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(99)],
        help_text="Share of entering visitors kept on the control and reported apart as the holdout.",
    )
    audience = models.ForeignKey(
        "tailored.Segment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Optional: only visitors in this segment enter the test.",
    )
    goals = models.CharField(
        max_length=200, default="click",
        help_text="Event types that count as a conversion, comma separated; the first is the primary goal "
        "(click, add_to_cart, purchase or any registered type).",
    )
    click_target = models.CharField(
        max_length=128, blank=True,
        help_text='For a "click" goal: count only clicks on this target (the data-track or id of the CTA).',
    )
    target = models.CharField(max_length=10, choices=Target.choices, default=Target.VARIANTS)
    target_block = models.CharField(
        max_length=64, blank=True,
        help_text="Variants: which personalized block: its number on the page (1 = the first personalized "
        "block; empty also means the first) or its id.",
    )
    allocation = models.CharField(
        max_length=10, choices=Allocation.choices, default=Allocation.FIXED,
        help_text="Fixed: the arms' weights. Thompson sampling: weights move towards the arms that convert "
        "best on the primary goal (at least 1% each); visitors keep the arm they first got.",
    )
    reallocate_every_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1)], help_text="Thompson sampling: how often the weights are recomputed."
    )
    layer = models.SlugField(
        max_length=64, blank=True,
        help_text="Optional: experiments in the same layer never share a visitor (mutually exclusive).",
    )
    layer_share_percent = models.PositiveSmallIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Share of the layer's visitors this experiment may reach; the running and paused "
        "experiments of one layer share at most 100%.",
    )
    winner = models.CharField(max_length=40, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    panels = [
        ResultsLinkPanel(),
        FieldRowPanel([FieldPanel("name"), FieldPanel("key")]),
        FieldRowPanel([FieldPanel("status"), FieldPanel("target")]),
        FieldPanel("target_block"),
        FieldRowPanel([FieldPanel("traffic_percent"), FieldPanel("holdout_percent"), FieldPanel("audience")]),
        FieldRowPanel([FieldPanel("goals"), FieldPanel("click_target")]),
        FieldRowPanel([FieldPanel("allocation"), FieldPanel("reallocate_every_minutes")]),
        FieldRowPanel([FieldPanel("layer"), FieldPanel("layer_share_percent")]),
        MultiFieldPanel(
            [FieldRowPanel([FieldPanel("starts_at"), FieldPanel("ends_at")]), FieldPanel("seed")],
            heading="Schedule and seed",
        ),
        InlinePanel("arms", label="Arm", heading="Arms (the first is the control)"),
    ]

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def goal_list(self) -> list[str]:
        return [goal.strip() for goal in self.goals.split(",") if goal.strip()]

    @property
    def primary_goal(self) -> str:
        goals = self.goal_list
        return goals[0] if goals else "click"

    @property
    def hash_seed(self) -> str:
        return self.seed or self.key

    def is_live(self, now=None) -> bool:
        """Running and inside its dates: the only state in which visitors are assigned and counted."""
        now = now or timezone.now()
        if self.status != self.Status.RUNNING:
            return False
        return (self.starts_at is None or self.starts_at <= now) and (self.ends_at is None or now < self.ends_at)

    def clean(self) -> None:
        unknown = [goal for goal in self.goal_list if goal not in EVENT_TYPES]
        if not self.goal_list or unknown:
            raise ValidationError({"goals": f"Unknown event types: {', '.join(unknown) or '(none given)'}; "
                                            f"known: {', '.join(sorted(EVENT_TYPES))}."})
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The end must come after the start."})

    # Experiments that hold a slice of their layer: paused ones keep theirs so a pause moves nobody.
    # (The page form checks that a layer's slices total at most 100%; see forms.py.)
    HOLDS_LAYER = (Status.RUNNING, Status.PAUSED)


class ExperimentArm(Orderable):
    """One alternative. What it shows depends on the experiment's target: a variant of the
    personalized block, the experiment block's alternative with this key, or a page."""

    experiment = ParentalKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    key = models.CharField(max_length=40, help_text="Short identifier, e.g. control, b, green-button.")
    label = models.CharField(max_length=80, blank=True)
    weight = models.PositiveIntegerField(default=50, validators=[MinValueValidator(0)], help_text="Relative share.")
    variant = models.CharField(
        max_length=80, blank=True,
        help_text='Variants target: "fallback", the variant\'s number (1 = first), its label or its id.',
    )
    alternative_page = models.ForeignKey(
        "wagtailcore.Page", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Page target: the live page served at the original URL (empty: the page itself).",
    )

    panels = [
        FieldRowPanel([FieldPanel("key"), FieldPanel("label"), FieldPanel("weight")]),
        FieldPanel("variant"),
        PageChooserPanel("alternative_page"),
    ]

    def clean(self) -> None:
        if (not ARM_KEY.match(self.key or "") and parse_cell(self.key) is None) or self.key == HOLDOUT:
            raise ValidationError({"key": f'Lower-case letters, digits, "-" and "_" (not "{HOLDOUT}"); a '
                                          'factorial cell: "factor=level,factor=level".'})

    def __str__(self) -> str:
        return self.label or self.key


class AllocationChange(models.Model):
    """One reallocation of a Thompson-sampling experiment: the arm weights (fractions summing
    to 1) from `at` on, and the flushed primary-goal counts they were computed from. The
    latest row is the experiment's current allocation; the rows are its history."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="allocation_changes")
    at = models.DateTimeField(db_index=True)
    weights = models.JSONField(help_text="Arm key -> share of new visitors.")
    counts = models.JSONField(default=dict, help_text="Arm key -> [conversions, exposures] used.")
    reason = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["experiment", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.experiment_id} at {self.at:%Y-%m-%d %H:%M}"


class ExperimentCount(models.Model):
    """Hourly counts per arm, written by the flush (never a row per visitor). Goal "" holds the
    exposures and their covariate sums; a goal's row holds its conversions.

    CUPED sufficient statistics: x is an exposed visitor's count of the primary goal in the EXPERIMENT_CUPED_DAYS
    before exposure, y = 1 for a converter. n = exposures, Σx = sum_x, Σx² = sum_x2 (goal ""),
    Σy = Σy² = conversions and Σxy = sum_xy (goal rows)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="counts")
    arm = models.CharField(max_length=40)
    goal = models.CharField(max_length=64, blank=True)
    hour = models.DateTimeField()
    exposures = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    sum_x = models.BigIntegerField(default=0)
    sum_x2 = models.BigIntegerField(default=0)
    sum_xy = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "arm", "goal", "hour"], name="tl_xp_count_unique"),
        ]


class FlushBatch(models.Model):
    """Batches of Redis counts already applied: a flush retried after a crash between the database
    commit and the Redis delete finds its batch here and does not count it twice."""

    batch = models.CharField(max_length=64, unique=True)
    applied_at = models.DateTimeField(auto_now_add=True)
