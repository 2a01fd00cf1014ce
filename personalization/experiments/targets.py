"""What an experiment's arms show: resolved from the page's live content for a "variants"
target, and compiled with the arms' weights into `LiveExperiment`s for the cache.

Stream content is read as raw JSON (`raw_data`): the personalization layer never imports the
block classes (blocks import personalization, not the other way round)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from wagtail.fields import StreamField
from wagtail.models import Page

from .models import CONTROL, FALLBACK, Experiment, ExperimentArm
from .services import LiveExperiment, spec_of

logger = logging.getLogger(__name__)


class TargetError(ValueError):
    """The experiment's arms cannot be matched to the page's content."""


def stream_blocks(page: Page) -> Iterator[dict[str, Any]]:
    """The top-level blocks of every StreamField of the page, as raw dicts."""
    for model_field in page._meta.get_fields():
        if isinstance(model_field, StreamField):
            yield from getattr(page, model_field.name).raw_data


def personalized_block(page: Page, block_id: str) -> dict[str, Any]:
    """The targeted PersonalizedBlock: by id, by number among the page's personalized blocks
    ("2": the second), or the first one when `block_id` is empty."""
    found = [block for block in stream_blocks(page) if block.get("type") == "personalized"]
    wanted = block_id.strip()
    if wanted.isdigit() and 1 <= int(wanted) <= len(found):
        return found[int(wanted) - 1]
    for block in found:
        if not wanted or block.get("id") == wanted:
            return block
    listed = "; ".join(f"{i} (id {b.get('id')}: {_variant_labels(b)})" for i, b in enumerate(found, 1)) or "none"
    raise TargetError(f"no personalized block “{wanted or '(the first)'}” on “{page.title}”; it has: {listed}")


def _variant_labels(block: dict[str, Any]) -> str:
    labels = [(v.get("value") or {}).get("label") or "unlabelled" for v in block["value"].get("variants", [])]
    return ", ".join(labels) or "no variants"


def variant_arms(experiment: Experiment, page: Page) -> list[tuple[str, str, int, str]]:
    """(arm key, label, weight, variant id or FALLBACK), control first. Without arms: the
    fallback as control and every variant, equal weights."""
    block = personalized_block(page, experiment.target_block)
    variants = [(v.get("id"), (v.get("value") or {}).get("label") or "") for v in block["value"].get("variants", [])]
    arms = list(experiment.arms.all())
    if not arms:
        auto = [(CONTROL, "Fallback", 50, FALLBACK)]
        return auto + [(f"variant-{i}", label or f"Variant {i}", 50, vid) for i, (vid, label) in enumerate(variants, 1)]
    return [(arm.key, arm.label or arm.key, arm.weight, _variant_of(arm, variants)) for arm in arms]


def _variant_of(arm: ExperimentArm, variants: list[tuple[str, str]]) -> str:
    wanted = (arm.variant or arm.key).strip()
    if wanted.lower() in (FALLBACK, CONTROL):
        return FALLBACK
    if wanted.isdigit() and 1 <= int(wanted) <= len(variants):
        return variants[int(wanted) - 1][0]
    for variant_id, label in variants:
        if wanted == variant_id or wanted.lower() == label.lower():
            return variant_id
    raise TargetError(f"arm {arm.key}: no variant “{wanted}” (use fallback, a number, a label or an id)")


def _check_alternatives(experiment: Experiment, page: Page, keys: list[str]) -> None:
    """Every arm must be an alternative of an experiment block naming this experiment on the page:
    otherwise its visitors would be counted for content they never saw."""
    blocks = [b for b in stream_blocks(page) if b.get("type") == "experiment" and (b.get("value") or {}).get("experiment") == experiment.key]
    if not blocks:
        raise TargetError(f"no experiment block with the key {experiment.key} on “{page.title}”")
    for block in blocks:
        offered = [(item.get("value") or {}).get("key") for item in block["value"].get("alternatives", [])]
        missing = [key for key in keys if key not in offered]
        if missing:
            raise TargetError(f"arms {', '.join(missing)} are not alternatives of the block (it has {', '.join(map(str, offered))})")


def compile_experiment(experiment: Experiment) -> LiveExperiment:
    """One experiment for the cache; raises TargetError or ValueError when misconfigured."""
    arms = list(experiment.arms.all())
    variants: dict[str, str] = {}
    pages: dict[str, int | None] = {}
    if experiment.target == Experiment.Target.VARIANTS:
        resolved = variant_arms(experiment, experiment.page.specific)
        weights = [(key, weight) for key, _, weight, _ in resolved]
        variants = {key: variant for key, _, _, variant in resolved}
    else:
        if len(arms) < 2:
            raise TargetError("add at least two arms")
        if experiment.target == Experiment.Target.BLOCK:
            _check_alternatives(experiment, experiment.page.specific, [arm.key for arm in arms])
        weights = [(arm.key, arm.weight) for arm in arms]
        pages = {arm.key: arm.alternative_page_id for arm in arms}
    spec = spec_of(experiment.key, experiment.hash_seed, weights, experiment.traffic_percent, experiment.holdout_percent)
    return LiveExperiment(
        key=experiment.key,
        target=experiment.target,
        page_id=experiment.page_id,
        spec=spec,
        goals=tuple(experiment.goal_list) or ("click",),
        audience=experiment.audience.slug if experiment.audience_id else None,
        click_target=experiment.click_target,
        starts_at=experiment.starts_at.timestamp() if experiment.starts_at else None,
        ends_at=experiment.ends_at.timestamp() if experiment.ends_at else None,
        variants=variants,
        pages=pages,
    )


def compile_running(experiments: Iterable[Experiment] | None = None) -> list[LiveExperiment]:
    """Every running experiment that compiles; a broken one is logged and left out (its visitors
    see the page as if no experiment ran), never an error page."""
    if experiments is None:
        experiments = (
            Experiment.objects.filter(status=Experiment.Status.RUNNING)
            .select_related("audience", "page")
            .prefetch_related("arms")
        )
    compiled = []
    for experiment in experiments:
        try:
            compiled.append(compile_experiment(experiment))
        except (TargetError, ValueError) as error:
            logger.warning("experiment %s not running: %s", experiment.key, error)
    return compiled


def problem(experiment: Experiment) -> str | None:
    """Why the experiment could not run as configured (shown in the admin), or None."""
    try:
        compile_experiment(experiment)
    except (TargetError, ValueError) as error:
        return str(error)
    return None
