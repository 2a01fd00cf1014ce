"""Promote a winner: make the winning arm what everyone sees, then finish the experiment.

- "variants": the winning variant's content becomes the personalized block's fallback (the
  variants keep their targeting), in a new revision that is published;
- "block": each experiment block is replaced by the winner's content (a factorial block: its
  factor's level in the winning cell), in a new published revision;
- "page": the pages are left as they are; the winner is recorded.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from django.db import transaction
from wagtail.fields import StreamField
from wagtail.models import Page

from .models import FALLBACK, Experiment, parse_cell
from .targets import TargetError, variant_arms


class PromotionError(ValueError):
    """The winner cannot be promoted (said to the editor as is)."""


@transaction.atomic
def promote(experiment: Experiment, arm: str, user=None) -> None:
    """Make `arm` the default and finish the experiment."""
    keys = {a.key for a in experiment.arms.all()}
    page = experiment.page.specific
    if experiment.target == Experiment.Target.VARIANTS:
        _promote_variant(experiment, page, arm, user)
    elif experiment.target == Experiment.Target.BLOCK:
        _promote_alternative(experiment, page, arm, user)
    elif arm not in keys:
        raise PromotionError(f"no arm {arm}")
    experiment.winner = arm
    experiment.status = Experiment.Status.FINISHED
    experiment.save(update_fields=["winner", "status", "updated_at"])


def _publish(page: Page, field_name: str, body: list[dict[str, Any]], user) -> None:
    if page.has_unpublished_changes:
        raise PromotionError(f"“{page.title}” has unpublished changes: publish or discard them first.")
    setattr(page, field_name, body)
    page.save_revision(user=user, log_action=True).publish(user=user)


def _sections(page: Page) -> tuple[str, list[dict[str, Any]]]:
    for model_field in page._meta.get_fields():
        if isinstance(model_field, StreamField):
            return model_field.name, copy.deepcopy(list(getattr(page, model_field.name).raw_data))
    raise PromotionError("the page has no sections")


def _fresh_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Copied content gets new ids: block ids are unique within a page (fragment cache keys use them).
    return [{**copy.deepcopy(block), "id": str(uuid.uuid4())} for block in blocks]


def _promote_variant(experiment: Experiment, page: Page, arm: str, user) -> None:
    try:
        shown = {key: variant for key, _, _, variant in variant_arms(experiment, page)}
    except TargetError as error:
        raise PromotionError(str(error)) from None
    if arm not in shown:
        raise PromotionError(f"no arm {arm}")
    if shown[arm] == FALLBACK:
        return  # the control won: the fallback already is the default
    field_name, body = _sections(page)
    for section in body:
        variants = section.get("value", {}).get("variants", []) if section.get("type") == "personalized" else []
        winner = next((v for v in variants if v.get("id") == shown[arm]), None)
        if winner is not None:
            section["value"]["fallback"] = _fresh_ids(winner["value"]["content"])
            _publish(page, field_name, body, user)
            return
    raise PromotionError("the winning variant is no longer on the page")


def _promote_alternative(experiment: Experiment, page: Page, arm: str, user) -> None:
    """Every experiment block of the experiment becomes the winner's content: the arm's
    alternative, or for a factorial experiment's block its factor's level in the winning cell."""
    field_name, body = _sections(page)
    cell = parse_cell(arm)
    found = [i for i, s in enumerate(body) if s.get("type") == "experiment" and (s.get("value") or {}).get("experiment") == experiment.key]
    if not found:
        raise PromotionError(f"no experiment block for {experiment.key} on “{page.title}”")
    for index in reversed(found):  # from the end, so replacing one keeps the others' indexes
        value = body[index]["value"]
        wanted = cell.get(value.get("factor") or "", "") if cell else arm
        alternatives = [item.get("value", item) for item in value.get("alternatives", [])]
        winner = next((alt for alt in alternatives if alt.get("key") == wanted), None)
        if winner is None:
            raise PromotionError(f"the experiment block has no alternative {wanted or arm}")
        body[index : index + 1] = _fresh_ids(winner.get("content", []))
    _publish(page, field_name, body, user)
