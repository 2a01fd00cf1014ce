"""GraphQL type of the ExperimentBlock: only the requesting visitor's alternative leaves the
server, chosen by the same `ExperimentBlock.choose` as SSR, so resolving it counts the exposure."""

from __future__ import annotations

import graphene
from grapple.registry import registry
from grapple.types.interfaces import StreamFieldInterface

from tailored import decisions
from tailored.decisions import Decision

from .experiments import ArmChoice, ExperimentBlock
from .visitors import visitor_of_info


def _choice(child, info) -> ArmChoice:
    """Choose once per block per request; every field reads the same choice."""
    choice = getattr(child, "_tailored_arm", None)
    if choice is None:
        choice = child._tailored_arm = child.block.choose(child.value, visitor_of_info(info))
        # The response's extensions.decisions (issue 9) lists what this visitor was given.
        decided = (choice.experiment, choice.arm) if choice.running else (None, None)
        decisions.record(info.context, Decision(str(child.id), choice.key, *decided))
    return choice


class ExperimentBlockType(graphene.ObjectType):
    """A section under an A/B/n test: the alternative of the visitor's arm (the control when the
    test is not running or the visitor does not take part)."""

    experiment = graphene.String(required=True, description="The experiment's key.")
    arm = graphene.String(required=True, description="The key of the arm this visitor sees.")
    arm_label = graphene.String(required=True, description="The editor's label of that arm.")
    blocks = graphene.List(
        graphene.NonNull(StreamFieldInterface), required=True, description="The arm's content."
    )

    class Meta:
        name = "ExperimentBlock"
        interfaces = (StreamFieldInterface,)

    def resolve_experiment(self, info):
        return _choice(self, info).experiment

    def resolve_arm(self, info):
        return _choice(self, info).arm

    def resolve_arm_label(self, info):
        return _choice(self, info).label

    def resolve_blocks(self, info):
        return list(_choice(self, info).content)

    def resolve_raw_value(self, info):
        from .graphql import stream_raw_value  # graphql imports this module at its end

        return stream_raw_value(_choice(self, info).content)


registry.streamfield_blocks[ExperimentBlock] = ExperimentBlockType
