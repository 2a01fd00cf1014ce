"""What each PersonalizedBlock of a page chose, and why, for the ?explain=1 panel (issue 16 item 4).

`PersonalizedBlock.render` calls `note` with the choice it made; on a request that asks for an
explanation (`?explain=1`), the choice and its reasons are kept on the request, in the order the
blocks rendered, and `tailored.frontend.partials` lists them at the end of the page (the panel is
rendered after the page's blocks). On any other request `note` returns at once: choosing a
variant costs nothing more.

A reason names what matched: the segments of the variant the visitor is in, and each context tag
(device, daypart, weekday, country or region, weather, campaign, schedule); or an experiment's
arm, the global holdout, or "no variant matched" for the fallback.
"""

from __future__ import annotations

from typing import Any

from tailored.core.selection import FALLBACK, VariantTags
from tailored.core.types import Visitor
from tailored.services import is_editor

ATTRIBUTE = "_tailored_block_choices"


def wanted(request: Any) -> bool:
    """An editor's ?explain=1 request (as the panel's own test): a visitor adding the parameter
    costs the blocks nothing."""
    get = getattr(request, "GET", None)
    return get is not None and get.get("explain") == "1" and is_editor(request)


def note(request: Any, value: Any, choice: Any, visitor: Visitor | None, now: float | None = None) -> None:
    """Keep this block's choice and why on an explaining request; nothing otherwise."""
    if not wanted(request):
        return
    from .personalized import _tags  # the block module imports this one

    choices: list[dict[str, Any]] = getattr(request, ATTRIBUTE, None) or []
    setattr(request, ATTRIBUTE, choices)
    entry = {
        "number": len(choices) + 1,
        "key": choice.key,
        "label": choice.label,
        "fallback": choice.key == FALLBACK,
        "variants": len(value["variants"]),
        "segments": [],
        "tags": [],
        "reason": None,
    }
    if choice.holdout:
        entry["reason"] = "this visitor is in the global holdout, which always sees the fallback"
    elif choice.experiment:
        entry["reason"] = f"the running experiment \u201c{choice.experiment}\u201d gave this visitor its arm \u201c{choice.arm}\u201d"
    elif visitor is None:
        entry["reason"] = "personalization is off"
    elif choice.key == FALLBACK:
        entry["reason"] = "no variant matched"
    else:
        bound = next((b for i, b in enumerate(value["variants"].bound_blocks) if (b.id or str(i)) == choice.key), None)
        if bound is not None:
            tags = _tags(choice.key, bound.value)
            entry["segments"] = sorted(tags.segments & visitor.segments)
            entry["tags"] = matched_tags(tags, visitor)
    choices.append(entry)


def matched_tags(tags: VariantTags, visitor: Visitor) -> list[str]:
    """The context tags of a chosen variant, as what the visitor matched: "device mobile"."""
    # Imported here, as the module comes with the rule builder's labels (explaining pages only).
    from tailored.rule_sentences import WEEKDAY_NAMES

    context = visitor.context
    matched = []
    for name, wanted_values, seen in (
        ("device", tags.devices, context.device),
        ("daypart", tags.dayparts, context.daypart),
        ("weekday", tags.weekdays, WEEKDAY_NAMES.get(context.weekday or "", context.weekday)),
        ("weather", tags.weather, context.weather),
        ("campaign", tags.campaigns, context.utm_campaign),
    ):
        if wanted_values:
            matched.append(f"{name} {seen}")
    if tags.regions:
        place = context.region if context.region in tags.regions else context.country
        matched.append(f"country or region {place}")
    if tags.scheduled:
        matched.append("within its schedule")
    return matched


def of(request: Any) -> list[dict[str, Any]]:
    """This request's block choices, in the order the blocks rendered."""
    return list(getattr(request, ATTRIBUTE, None) or [])
