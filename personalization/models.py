"""Stored definitions only; decisions live in personalization.core."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from personalization.core.rules import CompiledRule, RuleError, compile_rule

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
        return compile_rule(self.rule)

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
