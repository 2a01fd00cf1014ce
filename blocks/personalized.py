"""PersonalizedBlock: ordered variants tagged with segments and context, plus a required fallback.

A variant targets segments (any of) and context tags (device, daypart, weekday, country or
region, weather, UTM campaign), within an optional schedule; the first match wins. Tags are
stored as slugs and codes, so choosing a variant is a set test with no database query. SSR
(`render`) and GraphQL (`tailored.blocks.graphql`) both call `choose`, which calls the pure
`core.selection.choose_variant`: the two paths cannot disagree.

Each variant carries a `summary` ("Cart abandoners · mobile") derived from its targeting on every
save and shown as the collapsed variant's label (`label_format`), so no admin JavaScript is needed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dt_time
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import dateformat, timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.safestring import mark_safe
from wagtail import blocks
from wagtail.blocks.stream_block import StreamBlockValidationError, StreamValue

try:  # Wagtail 7.3+: a variant's fields in groups (Context, Schedule), the summary as a setting
    from wagtail.blocks.struct_block import BlockGroup
except ImportError:  # Wagtail 7.0-7.2: the same fields, in order, ungrouped
    BlockGroup = None

from tailored import caching, conf, fragments, holdout
from tailored.core.context import clock_minutes
from tailored.core.selection import FALLBACK, Recurrence, VariantTags, choose_variant
from tailored.core.types import DAYPARTS, DEVICES, WEATHER_CONDITIONS, WEEKDAYS, Visitor
from tailored.experiments.services import pick_variant
from tailored.middleware import current_request

from . import explained
from .choices import StaticChoiceBlock
from .content import ContentStreamBlock, CTABlock, HeroBlock, RichTextBlock
from .media import ImageWithTextBlock
from .visitors import request_of, visitor_of, visitor_of_request

REGION_CODE = re.compile(r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?\Z")


def segment_choices() -> list[tuple[str, str]]:
    # Imported lazily: block definitions are built at import time, before apps are ready.
    from tailored.models import Segment

    return [(s.slug, s.name) for s in Segment.objects.order_by("name").only("slug", "name")]


def segment_names(slugs: Iterable[str]) -> dict[str, str]:
    """Segment names by slug, in one query (admin only: summaries are built on save and edit)."""
    from tailored.models import Segment

    slugs = set(slugs)
    return dict(Segment.objects.filter(slug__in=slugs).values_list("slug", "name")) if slugs else {}


def segment_pks(slugs) -> dict[str, int]:
    """Segment primary keys by slug, in one query: for the reference index ("Used by")."""
    from tailored.models import Segment

    slugs = set(slugs)
    return dict(Segment.objects.filter(slug__in=slugs).values_list("slug", "pk")) if slugs else {}


class SlugsBlock(blocks.MultipleChoiceBlock):
    """A multiple choice stored as plain slugs. Loading a page skips the choice lookup (which for
    segments is a query) so rendering costs no query per tag; choices still validate on save."""

    def __init__(self, *args, **kwargs):
        # Checkboxes: every option visible at once (a multiple select hides them behind ctrl-click).
        kwargs.setdefault("widget", forms.CheckboxSelectMultiple)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


class CodesBlock(blocks.FieldBlock):
    """A list of short codes, typed comma separated and stored as a JSON list of normalised codes
    (so choosing compares strings, with no parsing at request time)."""

    def __init__(self, required=False, help_text=None, **kwargs):
        self.field = forms.CharField(required=required, help_text=help_text, max_length=500)
        super().__init__(**kwargs)

    def normalise(self, code: str) -> str:
        return code

    def problem(self, code: str) -> str | None:
        """Why `code` is not acceptable, or None."""
        return None

    def to_python(self, value):
        if not value:
            return []
        items = value.split(",") if isinstance(value, str) else value
        return [code for code in (self.normalise(str(item).strip()) for item in items) if code]

    def get_prep_value(self, value):
        return self.to_python(value)

    def normalize(self, value):
        return self.to_python(value)

    def value_for_form(self, value):
        return ", ".join(self.to_python(value))

    def value_from_form(self, value):
        return self.to_python(value)

    def clean(self, value):
        codes = super().clean(value)
        problems = [problem for problem in map(self.problem, codes) if problem]
        if problems:
            raise ValidationError(problems[0])
        return list(dict.fromkeys(codes))

    def get_searchable_content(self, value):
        return []


class RegionsBlock(CodesBlock):
    """Countries (ISO 3166-1 alpha-2, "GB") and regions (ISO 3166-2, "GB-ENG", "US-CA")."""

    def normalise(self, code: str) -> str:
        return code.upper()

    def problem(self, code: str) -> str | None:
        if REGION_CODE.match(code):
            return None
        return f"“{code}” is not an ISO country or region code, such as GB, GB-ENG or US-CA."


class CampaignsBlock(CodesBlock):
    """UTM campaign names, stored as the slugs the context provider makes of utm_campaign."""

    def normalise(self, code: str) -> str:
        from django.utils.text import slugify

        return slugify(code)[:64].strip("-_")


class SummaryBlock(blocks.FieldBlock):
    """Read-only: the variant's targeting in words, rebuilt on every save."""

    def __init__(self, help_text=None, **kwargs):
        self.field = forms.CharField(
            required=False,
            help_text=help_text,
            widget=forms.TextInput(attrs={"readonly": "readonly", "tabindex": "-1"}),
        )
        super().__init__(**kwargs)

    def get_searchable_content(self, value):
        return []


class VariantBlock(blocks.StructBlock):
    label = blocks.CharBlock(
        required=False, max_length=80, help_text="For editors, e.g. 'Spring sale for app users'. Optional."
    )
    segments = SlugsBlock(choices=segment_choices, required=False, help_text="Shown to visitors in any of these segments.")
    devices = SlugsBlock(choices=[(d, d.title()) for d in DEVICES if d != "bot"], required=False)
    dayparts = SlugsBlock(
        choices=[(d, d.title()) for d in DAYPARTS], required=False, help_text="In the visitor's local time."
    )
    weekdays = SlugsBlock(choices=[(d, d.title()) for d in WEEKDAYS], required=False)
    regions = RegionsBlock(help_text="Countries or regions as ISO codes, comma separated: GB, GB-ENG, US-CA.")
    weather = SlugsBlock(choices=[(w, w.title()) for w in WEATHER_CONDITIONS], required=False)
    campaigns = CampaignsBlock(help_text="UTM campaigns (the utm_campaign of the link), comma separated.")
    starts_at = blocks.DateTimeBlock(required=False, help_text="Shown from this moment. Optional.")
    ends_at = blocks.DateTimeBlock(required=False, help_text="Hidden from this moment. Optional.")
    repeat_from = blocks.TimeBlock(required=False, help_text="Every week: shown from this time of day...")
    repeat_until = blocks.TimeBlock(
        required=False, help_text="...until this time (before it). Later than the start: the same day; earlier: past midnight."
    )
    repeat_on = SlugsBlock(
        choices=[(d, d.title()) for d in WEEKDAYS], required=False, help_text="On these days (none ticked: every day)."
    )
    repeat_zone = StaticChoiceBlock(
        choices=[("visitor", "In the visitor's local time"), ("site", "In the site's time zone")],
        default="visitor", required=False,
    )
    summary = SummaryBlock(help_text="The audience in words, shown when the variant is collapsed; updated on save.")
    content = ContentStreamBlock()

    class Meta:
        icon = "user"
        label_format = "{summary}"
        if BlockGroup is not None:
            form_layout = BlockGroup(
                children=[
                    "label",
                    "segments",
                    BlockGroup(
                        heading="Context",
                        children=["devices", "dayparts", "weekdays", "regions", "weather", "campaigns"],
                        help_text="Each kind you tick must match; leave a kind empty to accept any.",
                        icon="sliders",
                        classname="collapsed",
                    ),
                    BlockGroup(
                        heading="Schedule",
                        children=["starts_at", "ends_at", "repeat_from", "repeat_until", "repeat_on", "repeat_zone"],
                        icon="calendar",
                        classname="collapsed",
                    ),
                    "content",
                ],
                settings=["summary"],
            )

    def clean(self, value):
        value = super().clean(value)
        starts_at, ends_at = _aware(value.get("starts_at")), _aware(value.get("ends_at"))
        if starts_at and ends_at and ends_at <= starts_at:
            raise blocks.StructBlockValidationError(
                block_errors={"ends_at": ValidationError("The end must come after the start.")}
            )
        _check_recurrence(value)
        value["summary"] = summary_label(value, segment_names(_listed(value.get("segments"))))
        return value

    def get_form_state(self, value):
        # The collapsed label reads `summary`: fill it for variants saved before it existed. This
        # also runs on the raw form input when the edit view re-renders the page after a validation
        # error (dates still text, maybe half typed), so nothing here may raise: a 500 there loses
        # the editor's changes.
        if value is None:
            value = self.get_default()
        state = super().get_form_state(value)
        state["summary"] = summary_label(value, segment_names(_listed(value.get("segments"))))
        return state

    def extract_references(self, value):
        """Wagtail's reference index: the variant's content, and each segment it is tagged
        with, so a segment's "Used by" lists the pages that target it."""
        yield from self.references(value, segment_pks(value["segments"] or ()))

    def references(self, value, pks: dict[str, int]):
        from tailored.models import Segment

        yield from super().extract_references(value)
        for slug in value["segments"] or ():
            if slug in pks:
                yield Segment, str(pks[slug]), "segments", "segments"


@dataclass(frozen=True, slots=True)
class Choice:
    """The outcome of choosing: the variant's key (its stable block id, or "fallback") and content."""

    key: str
    label: str
    content: StreamValue
    experiment: str | None = None  # the running experiment that decided, if one did (issue 8)
    arm: str | None = None
    holdout: bool = False  # the visitor is in the global holdout: fallback, whatever the rules (issue 9)


class PersonalizedBlock(blocks.StructBlock):
    # Collapsed: the editor sees one summary line per variant ("Cart abandoners · mobile").
    variants = blocks.ListBlock(
        VariantBlock(), default=[], collapsed=True, help_text="The first matching variant is shown."
    )
    # Not `required=True`: the generic "This field is required" would hide why it matters.
    fallback = ContentStreamBlock(required=False, help_text="Shown to everyone no variant matches. Required.")

    class Meta:
        icon = "group"
        template = "tailored/blocks/personalized.html"
        group = "Personalization"
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

    def extract_references(self, value):
        """As StructBlock's, but the segments of all variants are looked up in one query."""
        variants = value["variants"]
        pks = segment_pks(slug for bound in variants.bound_blocks for slug in bound.value["segments"] or ())
        variant_block = self.child_blocks["variants"].child_block
        for bound in variants.bound_blocks:
            for model, pk, model_path, content_path in variant_block.references(bound.value, pks):
                yield model, pk, f"variants.item.{model_path}", f"variants.{bound.id}.{content_path}"
        for name, block in self.child_blocks.items():
            if name == "variants":
                continue
            for model, pk, model_path, content_path in block.extract_references(value.get(name, block.get_default())):
                yield model, pk, f"{name}.{model_path}" if model_path else name, f"{name}.{content_path}" if content_path else name

    def choose(self, value: Any, visitor: Visitor | None, now: float | None = None) -> Choice:
        """The variant this visitor sees at `now` (default: the current time); the fallback when
        personalization is off or the visitor unknown."""
        if visitor is None or not conf.get("ENABLED"):
            return Choice(FALLBACK, "Fallback", value["fallback"])
        # The global holdout sees fallbacks before experiments or rules are asked, so it is
        # counted in no experiment; every chosen block notes the visitor's exposure (issue 9 item 7).
        if holdout.held_out(visitor, now):
            return Choice(FALLBACK, "Fallback", value["fallback"], holdout=True)
        variants = value["variants"]
        tags = [_tags(bound.id or str(i), bound.value) for i, bound in enumerate(variants.bound_blocks)]
        # A running experiment on these variants decides for everyone (issue 8); otherwise the rules.
        picked = pick_variant([t.key for t in tags], visitor, now)
        if picked is None:
            if visitor.id is None:  # a visitor with an id gets a private page whatever was read
                caching.note_variants(current_request(), tags)  # what a shared cache must key on
            index = choose_variant(tags, visitor.segments, visitor.context, time.time() if now is None else now)
        else:
            index = picked.index
        decided_by = {"experiment": picked.experiment, "arm": picked.arm} if picked else {}
        if index is None:
            return Choice(FALLBACK, "Fallback", value["fallback"], **decided_by)
        chosen = variants.bound_blocks[index]
        label = chosen.value["label"] or chosen.value.get("summary") or f"Variant {index + 1}"
        return Choice(tags[index].key, label, chosen.value["content"], **decided_by)

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        context["choice"] = self.choose(value, visitor_of(parent_context))
        return context

    def render(self, value, context=None):
        """Render the chosen variant, from the fragment cache when its content is the same for
        everyone who gets it (keyed by page, revision and variant; dropped on publish)."""
        visitor = visitor_of(context)
        decided = _page_decisions(context)
        # Once: the fragment key and the template share it (and the page's pre-pass made it).
        choice = decided.choice_of(value) if decided is not None else None
        if choice is None:
            choice = self.choose(value, visitor)
        explained.note(request_of(context), value, choice, visitor)  # for ?explain=1 only
        key = _fragment_key(value, context, choice)
        html = None if key is None else decided.fragment(key) if decided is not None else fragments.get(key)
        if html is None:
            template_context = blocks.StructBlock.get_context(self, value, parent_context=dict(context or {}))
            template_context["choice"] = choice
            html = render_to_string(self.meta.template, template_context)
            if key is not None:
                fragments.put(key, html)
        return mark_safe(html)  # noqa: S308 - rendered by our own template


class PageDecisions:
    """Every top-level PersonalizedBlock's choice on one page for one request, made before the
    first block renders (no rendering, no fragment read), so the fragments of the whole page are
    read in one round trip and each block is chosen once.

    `choices` lists (block id, Choice) in page order: what a page cache can key a rendered page
    on. Built by `decide_page`; memoised on the request."""

    def __init__(self, page_id: int, revision_id: int | None):
        self.page_id = page_id
        self.revision_id = revision_id
        self.choices: list[tuple[str, Choice]] = []
        self._by_value: dict[int, tuple[Any, Choice]] = {}  # id(value): the value is kept alive
        self._fragments: dict[str, str | None] | None = None
        self._prepared = False

    def add(self, block_id: str, value: Any, choice: Choice) -> None:
        self.choices.append((block_id, choice))
        self._by_value[id(value)] = (value, choice)

    def choice_of(self, value: Any) -> Choice | None:
        found = self._by_value.get(id(value))
        return found[1] if found is not None and found[0] is value else None

    def prepare_render(self) -> None:
        """Before the first block renders (not when the page cache answers without rendering):
        contents the fragment cache cannot serve are decoded together, as a page without
        personalized blocks decodes its body (one product, page and image look-up per type)."""
        if not self._prepared:
            self._prepared = True
            decode_together([c.content for _, c in self.choices if _variant_key(0, None, c) is None])

    def decode_all(self) -> None:
        """Every chosen content decoded together (GraphQL, which reads no fragments)."""
        if not self._prepared:
            self._prepared = True
            decode_together([c.content for _, c in self.choices])

    def fragment(self, key: str) -> str | None:
        if self._fragments is None:  # the first render: every block's fragment in one MGET
            keys = [_variant_key(self.page_id, self.revision_id, choice) for _, choice in self.choices]
            self._fragments = fragments.get_many([k for k in keys if k is not None])
        if key in self._fragments:
            return self._fragments.pop(key)  # once: a later render of the same key re-reads
        return fragments.get(key)


DECISIONS_ATTRIBUTE = "_tailored_page_decisions"


def decide_page(page: Any, request: Any, now: float | None = None) -> PageDecisions:
    """Choose every top-level PersonalizedBlock of `page`'s StreamFields for `request`'s visitor,
    without rendering: the vector a decision-keyed page cache looks up (issue 21). Memoised on
    the request, and reused by the blocks' own render, so nothing is chosen twice."""
    decided = getattr(request, DECISIONS_ATTRIBUTE, None)
    if decided is not None and decided.page_id == page.pk:
        return decided
    visitor = visitor_of_request(request)
    decided = PageDecisions(page.pk, getattr(page, "live_revision_id", None))
    for bound in _personalized_children(page):
        decided.add(str(bound.id), bound.value, bound.block.choose(bound.value, visitor, now))
    if request is not None:
        setattr(request, DECISIONS_ATTRIBUTE, decided)
    return decided


def decode_together(contents: Iterable[StreamValue]) -> None:
    """Decode the blocks of several lazy StreamValues with one `bulk_to_python` per block type,
    as Wagtail decodes one stream (`StreamValue._prefetch_blocks`), not one per stream."""
    # Grouped by name and block class: a variant's and a fallback's blocks are distinct
    # instances of the same declaration (ContentStreamBlock), and decode alike.
    pending: dict[tuple[str, type], list[tuple[StreamValue, int]]] = {}
    for content in contents:
        if not getattr(content, "is_lazy", False):
            continue
        children = content.stream_block.child_blocks
        for i, raw in enumerate(content._raw_data):
            if content._bound_blocks[i] is None and raw["type"] in children:
                pending.setdefault((raw["type"], type(children[raw["type"]])), []).append((content, i))
    for (type_name, _), places in pending.items():
        first = places[0][0].stream_block.child_blocks[type_name]
        values = first.bulk_to_python([content._raw_data[i]["value"] for content, i in places])
        for (content, i), value in zip(places, values, strict=True):
            block = content.stream_block.child_blocks[type_name]
            content._bound_blocks[i] = StreamValue.StreamChild(block, value, id=content._raw_data[i].get("id"))


def _personalized_children(page: Any) -> Iterable[Any]:
    from wagtail.fields import StreamField

    for field in type(page)._meta.concrete_fields:
        if isinstance(field, StreamField):
            for bound in getattr(page, field.name) or ():
                if isinstance(bound.block, PersonalizedBlock):
                    yield bound


def _page_decisions(context: Mapping[str, Any] | None) -> PageDecisions | None:
    """The page's decisions when this block renders as part of a published page's body."""
    context = context or {}
    page, request = context.get("page"), context.get("request")
    if page is None or request is None or getattr(request, "is_preview", False) or not getattr(page, "pk", None):
        return None
    decided = decide_page(page, request)
    decided.prepare_render()
    return decided


# Blocks whose output depends only on their content (no visitor, no clock): Tailored's own
# classes, exactly. A name is not enough: a site's own block called "hero" (a subclass too) may
# read the visitor, and a cached copy of it would reach other visitors.
CACHEABLE_BLOCK_TYPES = (HeroBlock, RichTextBlock, CTABlock, ImageWithTextBlock)


def cacheable(block: Any) -> bool:
    """Whether a block's output may be cached for everyone who is shown it."""
    return type(block) in CACHEABLE_BLOCK_TYPES


def _fragment_key(value: Any, context: Mapping[str, Any] | None, choice: Choice) -> str | None:
    context = context or {}
    page, request = context.get("page"), context.get("request")
    if page is None or getattr(request, "is_preview", False) or not getattr(page, "pk", None):
        return None
    return _variant_key(page.pk, getattr(page, "live_revision_id", None), choice)


def _variant_key(page_id: int, revision_id: int | None, choice: Choice) -> str | None:
    # From the stored data (types and ids): a cached fragment is served without decoding its
    # content, so a hit looks up none of its products or images.
    raw = choice.content.raw_data if choice.content else ()
    children = choice.content.stream_block.child_blocks if raw else {}
    if not raw or not all(cacheable(children.get(child["type"])) for child in raw):
        return None
    # The fallback's key is its first child's id: stable, and unique to this block.
    variant = choice.key if choice.key != FALLBACK else f"fallback-{raw[0].get('id') or choice.content[0].id}"
    # The wrapper's data-tl-* attributes carry the experiment and the holdout: part of the key.
    if choice.experiment:
        variant += f"-xp-{choice.experiment}-{choice.arm}"
    if choice.holdout:
        variant += "-holdout"
    # A block's template may translate its words ({% translate %}, _()): one fragment per language.
    return fragments.fragment_key(page_id, revision_id, f"{variant}@{translation.get_language() or ''}")


def summary_label(variant: Mapping[str, Any] | None, names: Mapping[str, str]) -> str:
    """The variant's targeting in words, e.g. "Cart abandoners · mobile"; the editor's label
    first when they gave one ("App promo: Cart abandoners · mobile").

    `variant` may be a stored value or the raw form input (missing keys, text for dates): a
    date that does not parse is left out here, and its own field tells the editor why."""
    variant = variant or {}
    either = " or ".join
    parts = [
        either(names.get(slug, slug) for slug in _listed(variant.get("segments"))),
        either(_listed(variant.get("devices"))),
        either(_listed(variant.get("dayparts"))),
        ", ".join(day.title() for day in _listed(variant.get("weekdays"))),
        either(_listed(variant.get("regions"))),
        either(_listed(variant.get("weather"))),
        either(f"campaign {c}" for c in _listed(variant.get("campaigns"))),
    ]
    starts_at, ends_at = _aware(variant.get("starts_at")), _aware(variant.get("ends_at"))
    if starts_at:
        parts.append(f"from {_when(starts_at)}")
    if ends_at:
        parts.append(f"until {_when(ends_at)}")
    parts.append(_recurrence_words(variant))
    targeting = " · ".join(part for part in parts if part)
    label = str(variant.get("label") or "").strip()
    if not label or label == targeting:
        return targeting or "Everyone (no targeting)"
    return f"{label}: {targeting}" if targeting else f"{label}: everyone"


def _check_recurrence(value: Mapping[str, Any]) -> None:
    start, end = _clock(value.get("repeat_from")), _clock(value.get("repeat_until"))
    problem = None
    if (start is None) != (end is None):
        field, problem = ("repeat_until" if end is None else "repeat_from"), "Give both times of a weekly schedule, or neither."
    elif start is not None and start == end:
        field, problem = "repeat_until", "The end must differ from the start."
    elif start is None and _listed(value.get("repeat_on")):
        field, problem = "repeat_from", "Give the times of day for the days you ticked."
    if problem:
        raise blocks.StructBlockValidationError(block_errors={field: ValidationError(problem)})


def _clock(value: Any) -> int | None:
    """Minutes after midnight of a TimeBlock value: a time, or "HH:MM[:SS]" as stored."""
    if isinstance(value, dt_time):
        return value.hour * 60 + value.minute
    if isinstance(value, str) and value:
        return clock_minutes(value.strip()[:5])
    return None


def _recurrence(variant: Any) -> Recurrence | None:
    start, end = _clock(variant.get("repeat_from")), _clock(variant.get("repeat_until"))
    if start is None or end is None or start == end:
        return None
    days = frozenset(variant.get("repeat_on") or ()) or frozenset(WEEKDAYS)
    zone = (settings.TIME_ZONE or "UTC") if variant.get("repeat_zone") == "site" else None
    return Recurrence(days, start, end, zone)


def _recurrence_words(variant: Any) -> str:
    recurrence = _recurrence(variant)
    if recurrence is None:
        return ""
    days = "every day" if recurrence.weekdays == frozenset(WEEKDAYS) else ", ".join(
        d.title() for d in WEEKDAYS if d in recurrence.weekdays
    )
    where = "site time" if recurrence.zone else "visitor's time"
    return f"{days} {_hhmm(recurrence.start)}-{_hhmm(recurrence.end)} ({where})"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _listed(value: Any) -> list[str]:
    """Tags as a list of strings, whatever shape they arrive in (None, one string, a list)."""
    if not value:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return [str(item) for item in value if item]
    return [str(value)]


def _aware(value: Any) -> datetime | None:
    """An aware datetime, or None for "no date". Text is what the edit form posts before the
    DateTimeBlock has cleaned it; what does not parse ("2026-13-45", "soon", "") is no date."""
    if isinstance(value, str):
        try:
            value = parse_datetime(value.strip())
        except ValueError:  # well formed but not a real moment, e.g. "2026-02-30 25:61"
            return None
    if not isinstance(value, datetime):
        return None
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def _when(moment: datetime) -> str:
    try:
        local = timezone.localtime(moment)
    except OverflowError:  # the very first or last representable moment: shown as entered
        local = moment
    return dateformat.format(local, "j M Y H:i")


def _tags(key: str, variant: Any) -> VariantTags:
    # Stored, cleaned values (lists of slugs): this runs for every personalized block of every
    # page, so it takes them as they are; only the editor's form state needs `_listed`'s tolerance.
    starts_at, ends_at = _aware(variant.get("starts_at")), _aware(variant.get("ends_at"))
    return VariantTags(
        key=key,
        segments=frozenset(variant.get("segments") or ()),
        devices=frozenset(variant.get("devices") or ()),
        dayparts=frozenset(variant.get("dayparts") or ()),
        weekdays=frozenset(variant.get("weekdays") or ()),
        regions=frozenset(variant.get("regions") or ()),
        weather=frozenset(variant.get("weather") or ()),
        campaigns=frozenset(variant.get("campaigns") or ()),
        starts_at=starts_at.timestamp() if starts_at else None,
        ends_at=ends_at.timestamp() if ends_at else None,
        recurrence=_recurrence(variant),
    )
