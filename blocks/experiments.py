"""ExperimentBlock: alternative contents of one section, compared in an A/B/n experiment.

The block names its experiment by key; the experiment (edited in the page's Experiments tab)
holds the weights, audience, goals and status. While it runs, each visitor sees the content of
their arm (sticky, counted once as an exposure); otherwise everyone sees the first alternative,
the control. SSR (`render`) and GraphQL (tailored.blocks.experiments_graphql) both call `choose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from wagtail import blocks
from wagtail.blocks.stream_block import StreamValue

from tailored.core.types import Visitor
from tailored.experiments.models import ARM_KEY, HOLDOUT, Experiment, parse_cell
from tailored.experiments.services import arm_for, live_experiment

from .content import ContentStreamBlock
from .visitors import visitor_of


@dataclass(frozen=True, slots=True)
class ArmChoice:
    """The alternative a visitor sees: its arm key, label and content."""

    experiment: str
    key: str
    label: str
    content: StreamValue
    running: bool = False  # False: the experiment is not running and everyone sees the first
    cell: str = ""  # a factorial experiment: the visitor's whole arm, "factor=level,..."

    @property
    def arm(self) -> str:
        """The experiment's arm: the cell of a factorial experiment, else the alternative's key."""
        return self.cell or self.key


class AlternativeBlock(blocks.StructBlock):
    key = blocks.CharBlock(max_length=40, help_text="The arm's key in the experiment, e.g. control, b.")
    label = blocks.CharBlock(required=False, max_length=80)
    content = ContentStreamBlock()

    class Meta:
        icon = "doc-full"
        label_format = "{key}: {label}"

    def clean(self, value):
        value = super().clean(value)
        if not ARM_KEY.match(value["key"]) or value["key"] == HOLDOUT:
            raise blocks.StructBlockValidationError(
                block_errors={"key": ValidationError(f'Lower-case letters, digits, "-" and "_" (not "{HOLDOUT}").')}
            )
        return value


class ExperimentBlock(blocks.StructBlock):
    experiment = blocks.CharBlock(max_length=64, help_text="The key of the experiment (Experiments tab) comparing these.")
    factor = blocks.CharBlock(
        required=False, max_length=40,
        help_text="Factorial experiments only: the factor this block varies (e.g. headline); the experiment's arms "
        'are then cells like "headline=a,button=green" and this block shows the alternative keyed by its level.',
    )
    alternatives = blocks.ListBlock(
        AlternativeBlock(), min_num=2, collapsed=True, help_text="The first is the control: everyone sees it when the test is not running."
    )

    class Meta:
        icon = "resubmit"
        template = "tailored/blocks/experiment.html"
        group = "Personalization"
        description = "Alternative versions of a section, compared in an A/B/n test."
        preview_value = {
            "experiment": "hero-test",
            "alternatives": [
                {"key": "control", "label": "Current", "content": [("hero", {"heading": "Welcome"})]},
                {"key": "b", "label": "Bolder", "content": [("hero", {"heading": "Welcome! 10% off today"})]},
            ],
        }

    def clean(self, value):
        value = super().clean(value)
        keys = [alternative["key"] for alternative in value["alternatives"]]
        if len(set(keys)) != len(keys):
            raise blocks.StructBlockValidationError(
                block_errors={"experiment": ValidationError("Each alternative needs its own key.")}
            )
        return value

    def choose(self, value: Any, visitor: Visitor | None, now: float | None = None) -> ArmChoice:
        """The alternative this visitor sees; the first (control) unless the experiment runs."""
        alternatives = list(value["alternatives"])
        if not alternatives:
            return ArmChoice(value["experiment"], "", "", StreamValue(ContentStreamBlock(), []))
        shown, live = alternatives[0], live_experiment(value["experiment"])
        running = live is not None and live.target == Experiment.Target.BLOCK
        cell = ""
        if running:
            arm = arm_for(visitor, live, now)
            wanted, cell = _level(arm, value.get("factor") or "")
            shown = next((alt for alt in alternatives if alt["key"] == wanted), alternatives[0])
        return ArmChoice(value["experiment"], shown["key"], shown["label"] or shown["key"], shown["content"], running, cell)

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        context["choice"] = self.choose(value, visitor_of(parent_context))
        return context


def _level(arm: str, factor: str) -> tuple[str, str]:
    """(the alternative key to show, the factorial cell or ""): a factorial block shows its
    factor's level in the visitor's cell; any other block the arm's own key."""
    cell = parse_cell(arm) if factor else None
    if cell is None:
        return arm, ""
    return cell.get(factor, ""), arm
