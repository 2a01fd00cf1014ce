"""Names for the ids the counters hold: page titles, and each personalized block's variant labels
read from the page's stored stream data (one query for all pages, no block rendering)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wagtail.models import Page

FALLBACK = "fallback"
# A recommendation block's variant: "model:<version>" when the trained recommender chose its list,
# else what served it without a model (tailored.blocks.products.Served.source; the blocks layer
# sits above this one, so the names are repeated here).
MODEL_PREFIX = "model:"
RECOMMENDATION_LABELS = {"popular": "Popular (no model)", "newest": "Newest (no model)", "recently_viewed": "Recently viewed"}


@dataclass
class BlockNames:
    """A block's name on its page and its variants' labels by key ("fallback" included)."""

    name: str
    variants: dict[str, str] = field(default_factory=dict)
    # A recommendation block: its variants are the model versions that chose its lists.
    recommendation: bool = False


def page_titles(page_ids: Iterable[int]) -> dict[int, str]:
    ids = [pk for pk in set(page_ids) if pk]
    return dict(Page.objects.filter(pk__in=ids).values_list("pk", "title")) if ids else {}


def block_names(page_ids: Iterable[int]) -> dict[str, BlockNames]:
    """Block id -> its names, for the personalized, experiment and recommendation blocks of these pages."""
    names: dict[str, BlockNames] = {}
    for page in Page.objects.filter(pk__in=[pk for pk in set(page_ids) if pk]).specific():
        for stream in _streams(page):
            _collect(stream, names)
    return names


def _streams(page: Any) -> list[Any]:
    from wagtail.fields import StreamField

    return [list(getattr(page, f.name).raw_data) for f in page._meta.get_fields() if isinstance(f, StreamField)]


def _collect(raw: Any, names: dict[str, BlockNames]) -> None:
    # The stored JSON: lists of {"type", "value", "id"}; a personalized block's value holds
    # "variants" (each {"value": {"label", ...}, "id"}), an experiment block's "alternatives".
    if isinstance(raw, list):
        for item in raw:
            _collect(item, names)
        return
    if not isinstance(raw, dict):
        return
    value = raw.get("value")
    if raw.get("type") == "recommendations" and isinstance(value, dict) and raw.get("id"):
        names[str(raw["id"])] = BlockNames(f"Recommendations: {value.get('heading') or 'untitled'}", dict(RECOMMENDATION_LABELS), True)
        return
    if isinstance(value, dict) and ("variants" in value or "alternatives" in value) and raw.get("id"):
        found = names.setdefault(str(raw["id"]), BlockNames(_title(raw, value)))
        found.variants[FALLBACK] = "Fallback"
        for index, variant in enumerate(value.get("variants") or []):
            inner = variant.get("value") or {}
            found.variants[str(variant.get("id"))] = inner.get("label") or inner.get("summary") or f"Variant {index + 1}"
        for alternative in value.get("alternatives") or []:
            key = alternative.get("key") or (alternative.get("value") or {}).get("key")
            label = alternative.get("label") or (alternative.get("value") or {}).get("label")
            if key:
                found.variants[str(key)] = label or str(key)
    for child in raw.values() if isinstance(raw, dict) else ():
        if isinstance(child, list | dict):
            _collect(child, names)


def _title(raw: dict[str, Any], value: dict[str, Any]) -> str:
    if value.get("experiment"):
        return f"Experiment {value['experiment']}"
    # The fallback's heading, as editors know the block: "Personalized: Good things for every day".
    first = (value.get("fallback") or [{}])[0]
    heading = first.get("value", {}).get("heading") if isinstance(first.get("value"), dict) else None
    return f"Personalized: {heading}" if heading else f"Personalized block {str(raw.get('id'))[:8]}"
