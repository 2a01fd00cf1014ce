"""PersonalizedBlock: ordered variants tagged with segments and context, plus a required fallback.

Tags are stored as slugs, so choosing a variant is a set test with no database query. SSR
(`render`) and GraphQL (`blocks.graphql`) both call `choose`, which calls the pure
`core.selection.choose_variant`: the two paths cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from wagtail import blocks
from wagtail.blocks.stream_block import StreamBlockValidationError, StreamValue

from personalization import conf
from personalization.core.selection import FALLBACK, VariantTags, choose_variant
from personalization.core.types import DAYPARTS, DEVICES, Visitor

from .content import ContentStreamBlock


def segment_choices() -> list[tuple[str, str]]:
    # Imported lazily: block definitions are built at import time, before apps are ready.
    from personalization.models import Segment

    return [(s.slug, s.name) for s in Segment.objects.order_by("name").only("slug", "name")]


class SlugsBlock(blocks.MultipleChoiceBlock):
    """A multiple choice stored as plain slugs. Loading a page skips the choice lookup (which for
    segments is a query) so rendering costs no query per tag; choices still validate on save."""

    def to_python(self, value):
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


class VariantBlock(blocks.StructBlock):
    label = blocks.CharBlock(required=False, max_length=80, help_text="For editors, e.g. 'Electronics fans'.")
    segments = SlugsBlock(choices=segment_choices, required=False, help_text="Shown to visitors in any of these segments.")
    devices = SlugsBlock(choices=[(d, d.title()) for d in DEVICES if d != "bot"], required=False)
    dayparts = SlugsBlock(choices=[(d, d.title()) for d in DAYPARTS], required=False)
    content = ContentStreamBlock()

    class Meta:
        icon = "user"
        label_format = "{label}"


@dataclass(frozen=True, slots=True)
class Choice:
    """The outcome of choosing: the variant's key (its stable block id, or "fallback") and content."""

    key: str
    label: str
    content: StreamValue


class PersonalizedBlock(blocks.StructBlock):
    variants = blocks.ListBlock(VariantBlock(), default=[], help_text="The first matching variant is shown.")
    # Not `required=True`: the generic "This field is required" would hide why it matters.
    fallback = ContentStreamBlock(required=False, help_text="Shown to everyone no variant matches. Required.")

    class Meta:
        icon = "group"
        template = "blocks/personalized.html"
        description = "Different content for different audiences, with a fallback for everyone else."
        preview_value = {"variants": [], "fallback": [("hero", {"heading": "Welcome"})]}

    def clean(self, value):
        value = super().clean(value)
        if not value["fallback"]:
            message = ValidationError("Add fallback content: it is what every visitor no variant matches sees.")
            raise blocks.StructBlockValidationError(
                block_errors={"fallback": StreamBlockValidationError(non_block_errors=[message])}
            )
        return value

    def choose(self, value: Any, visitor: Visitor | None) -> Choice:
        """The variant this visitor sees; the fallback when personalization is off or unknown."""
        if visitor is None or not conf.get("ENABLED"):
            return Choice(FALLBACK, "Fallback", value["fallback"])
        variants = value["variants"]
        tags = [_tags(bound.id or str(i), bound.value) for i, bound in enumerate(variants.bound_blocks)]
        index = choose_variant(tags, visitor.segments, visitor.context)
        if index is None:
            return Choice(FALLBACK, "Fallback", value["fallback"])
        chosen = variants.bound_blocks[index]
        return Choice(tags[index].key, chosen.value["label"] or f"Variant {index + 1}", chosen.value["content"])

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        request = (parent_context or {}).get("request")
        visitor = request.visitor if request is not None and conf.get("ENABLED") else None
        context["choice"] = self.choose(value, visitor)
        return context


def _tags(key: str, variant: Any) -> VariantTags:
    return VariantTags(
        key=key,
        segments=frozenset(variant["segments"] or ()),
        devices=frozenset(variant["devices"] or ()),
        dayparts=frozenset(variant["dayparts"] or ()),
    )
