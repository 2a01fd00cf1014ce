"""What an experiment's arms show: resolved from the page's live content for a "variants"
target, and compiled with the arms' weights into `LiveExperiment`s for the cache.

Stream content is read as raw JSON (`raw_data`): the personalization layer never imports the
block classes (blocks import tailored, not the other way round)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Subquery
from wagtail.fields import StreamField
from wagtail.models import Page

from tailored.core.bucketing import allocate_layer_ranges

from .models import CONTROL, FALLBACK, AllocationChange, Experiment, ExperimentArm, parse_cell
from .services import LiveExperiment, spec_of

logger = logging.getLogger(__name__)
BANDIT_FLOOR = 0.01  # Thompson sampling keeps at least 1% of new visitors on every arm


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


def _check_alternatives(experiment: Experiment, page: Page, keys: list[str]) -> tuple[str, ...]:
    """Every arm must be an alternative of an experiment block naming this experiment on the page:
    otherwise its visitors would be counted for content they never saw. Returns the factors of a
    factorial experiment (arms "factor=level,..."), else ()."""
    blocks = [b for b in stream_blocks(page) if b.get("type") == "experiment" and (b.get("value") or {}).get("experiment") == experiment.key]
    if not blocks:
        raise TargetError(f"no experiment block with the key {experiment.key} on “{page.title}”")
    cells = [parse_cell(key) for key in keys]
    if any(cells) or any((b.get("value") or {}).get("factor") for b in blocks):
        return _check_factorial(blocks, keys, cells)
    for block in blocks:
        offered = _offered(block)
        missing = [key for key in keys if key not in offered]
        if missing:
            raise TargetError(f"arms {', '.join(missing)} are not alternatives of the block (it has {', '.join(map(str, offered))})")
    return ()


def _offered(block: dict[str, Any]) -> list[str]:
    return [(item.get("value") or {}).get("key") for item in block["value"].get("alternatives", [])]


def _check_factorial(blocks: list[dict[str, Any]], keys: list[str], cells: list[dict[str, str] | None]) -> tuple[str, ...]:
    """A factorial experiment: every arm a cell over the same factors, every block one factor
    whose levels in the cells are among its alternatives, every factor shown by a block."""
    if not all(cells) or len({tuple(cell) for cell in cells}) != 1:
        raise TargetError('a factorial experiment needs every arm keyed "factor=level,factor=level" over the same factors')
    factors = tuple(cells[0])
    by_factor: dict[str, list[dict[str, Any]]] = {factor: [] for factor in factors}
    for block in blocks:
        factor = (block.get("value") or {}).get("factor") or ""
        if factor not in by_factor:
            raise TargetError(f"an experiment block has the factor “{factor}”; the arms' factors are {', '.join(factors)}")
        by_factor[factor].append(block)
        missing = sorted({cell[factor] for cell in cells} - set(_offered(block)))
        if missing:
            raise TargetError(f"factor {factor}: levels {', '.join(missing)} are not alternatives of its block")
    unshown = [factor for factor, found in by_factor.items() if not found]
    if unshown:
        raise TargetError(f"no experiment block shows the factor {', '.join(unshown)}")
    return factors


@dataclass(frozen=True, slots=True)
class Placement:
    """What compiling one experiment needs beyond its own row: its layer's slice and mates, and
    a bandit's current weights (arm -> share)."""

    layer_range: tuple[float, float] | None = None
    layer_mates: frozenset[str] = frozenset()
    weights: Mapping[str, float] | None = None


def compile_experiment(experiment: Experiment, placement: Placement | None = None) -> LiveExperiment:
    """One experiment for the cache; raises TargetError or ValueError when misconfigured."""
    placement = placement or placements([experiment])[experiment.key]
    arms = list(experiment.arms.all())
    variants: dict[str, str] = {}
    pages: dict[str, int | None] = {}
    factors: tuple[str, ...] = ()
    if experiment.target == Experiment.Target.VARIANTS:
        page = experiment.page.specific
        resolved = variant_arms(experiment, page)
        weights = [(key, float(weight)) for key, _, weight, _ in resolved]
        variants = {key: variant for key, _, _, variant in resolved}
        target_id = personalized_block(page, experiment.target_block).get("id") or ""
    else:
        if len(arms) < 2:
            raise TargetError("add at least two arms")
        if experiment.target == Experiment.Target.BLOCK:
            factors = _check_alternatives(experiment, experiment.page.specific, [arm.key for arm in arms])
        weights = [(arm.key, float(arm.weight)) for arm in arms]
        pages = {arm.key: arm.alternative_page_id for arm in arms}
        target_id = experiment.key if experiment.target == Experiment.Target.BLOCK else str(experiment.page_id)
    if placement.weights is not None:
        # A bandit: its latest allocation; an arm added since gets the floor until the next one.
        weights = [(key, placement.weights.get(key, BANDIT_FLOOR)) for key, _ in weights]
    if experiment.layer and placement.layer_range is None:
        raise TargetError(f"layer “{experiment.layer}” is full: its running and paused experiments hold 100%")
    spec = spec_of(
        experiment.key, experiment.hash_seed, weights, experiment.traffic_percent, experiment.holdout_percent,
        layer=experiment.layer or None, layer_range=placement.layer_range or (0.0, 1.0),
    )
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
        layer_mates=placement.layer_mates,
        factors=factors,
        target_id=target_id,
    )


def placements(experiments: Iterable[Experiment]) -> dict[str, Placement]:
    """Each experiment's layer slice and mates and its bandit weights, in three queries at most.

    A layer's slices are cut in a stable order (creation, then id) among its running and paused
    experiments, so pausing or starting one never moves an older one's slice; an experiment that
    does not fit in what is left gets no slice (and does not run)."""
    experiments = list(experiments)
    layers = {e.layer for e in experiments if e.layer}
    members: dict[str, list[tuple[str, int]]] = defaultdict(list)
    if layers:
        held = (Experiment.objects.filter(layer__in=layers, status__in=Experiment.HOLDS_LAYER)
                .order_by("created_at", "pk").values_list("layer", "key", "layer_share_percent"))
        for layer, key, share in held:
            members[layer].append((key, share))
        for e in experiments:  # an experiment being checked before it is saved running
            if e.layer and e.key not in {key for key, _ in members[e.layer]}:
                members[e.layer].append((e.key, e.layer_share_percent))
    ranges = {layer: _slices(found) for layer, found in members.items()}
    weights = current_weights([e for e in experiments if e.allocation == Experiment.Allocation.THOMPSON])
    return {
        e.key: Placement(
            layer_range=ranges[e.layer].get(e.key) if e.layer else None,
            layer_mates=frozenset(key for key, _ in members[e.layer] if key != e.key) if e.layer else frozenset(),
            weights=weights.get(e.pk) if e.allocation == Experiment.Allocation.THOMPSON else None,
        )
        for e in experiments
    }


def _slices(members: list[tuple[str, int]]) -> dict[str, tuple[float, float]]:
    fitting, taken = [], 0
    for key, share in members:
        if taken + share <= 100:
            fitting.append((key, share / 100))
            taken += share
    return allocate_layer_ranges(fitting)


def current_weights(experiments: Iterable[Experiment]) -> dict[int, dict[str, float]]:
    """The latest allocation of each bandit experiment that has been reallocated (by id)."""
    ids = [e.pk for e in experiments if e.pk]
    if not ids:
        return {}
    latest = AllocationChange.objects.filter(experiment=OuterRef("pk")).order_by("-at", "-pk").values("pk")[:1]
    pks = Experiment.objects.filter(pk__in=ids).annotate(latest=Subquery(latest)).values_list("latest", flat=True)
    changes = AllocationChange.objects.in_bulk([pk for pk in pks if pk])
    return {change.experiment_id: {k: float(v) for k, v in change.weights.items()} for change in changes.values()}


def compile_running(experiments: Iterable[Experiment] | None = None) -> list[LiveExperiment]:
    """Every running experiment that compiles; a broken one is logged and left out (its visitors
    see the page as if no experiment ran), never an error page. Of two running on the same
    personalized block or page, the older runs and the other is left out."""
    if experiments is None:
        experiments = (
            Experiment.objects.filter(status=Experiment.Status.RUNNING)
            .select_related("audience", "page")
            .prefetch_related("arms")
            .order_by("created_at", "pk")
        )
    experiments = list(experiments)
    placed = placements(experiments)
    compiled: dict[tuple[str, str], LiveExperiment] = {}
    for experiment in experiments:
        try:
            live = compile_experiment(experiment, placed[experiment.key])
            if (taken := compiled.get((live.target, live.target_id))) is not None:
                raise TargetError(_clash_message(live, taken.key))
            compiled[(live.target, live.target_id)] = live
        except (TargetError, ValueError) as error:
            logger.warning("experiment %s not running: %s", experiment.key, error)
    return list(compiled.values())


def _clash_message(live: LiveExperiment, other: str) -> str:
    what = "page" if live.target == Experiment.Target.PAGE else "personalized block"
    return f"the experiment {other} already runs on the same {what}; only one test may run on it at a time"


def clash(experiment: Experiment, live: LiveExperiment) -> str | None:
    """Why another running experiment keeps this one from running on the same target, or None.
    A running experiment gives way only to an older one (as the cache does); one not running yet
    may not start beside any."""
    if live.target == Experiment.Target.BLOCK:
        return None  # keys are unique: one experiment per experiment block key
    others = (Experiment.objects.filter(page_id=experiment.page_id, target=experiment.target, status=Experiment.Status.RUNNING)
              .exclude(pk=experiment.pk).select_related("page").prefetch_related("arms"))
    for other in others:
        younger = experiment.pk and (other.created_at, other.pk) > (experiment.created_at, experiment.pk)
        if younger and experiment.status == Experiment.Status.RUNNING:
            continue  # the younger one gives way
        try:
            if compile_experiment(other).target_id == live.target_id:
                return _clash_message(live, other.key)
        except (TargetError, ValueError):
            continue  # a broken one does not run, so it takes nothing
    return None


def problem(experiment: Experiment) -> str | None:
    """Why the experiment could not run as configured (shown in the admin), or None."""
    try:
        live = compile_experiment(experiment)
    except (TargetError, ValueError) as error:
        return str(error)
    return clash(experiment, live)
