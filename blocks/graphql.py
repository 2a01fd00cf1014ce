"""GraphQL types for the blocks, on grapple's StreamFieldInterface.

A PersonalizedBlock exposes only what the requesting visitor would see: the chosen variant's
key and blocks, and a rawValue holding that content alone. The other variants never leave the
server. Selection is the same `PersonalizedBlock.choose` that SSR rendering uses.
"""

from __future__ import annotations

import json

import graphene
from grapple.helpers import register_streamfield_block
from grapple.models import GraphQLString
from grapple.registry import registry
from grapple.types.interfaces import StreamFieldInterface

from .content import CTABlock, HeroBlock
from .personalized import Choice, PersonalizedBlock

HeroBlock.graphql_fields = [
    GraphQLString("heading", required=True),
    GraphQLString("subheading"),
    GraphQLString("cta_label"),
    GraphQLString("cta_url"),
]
CTABlock.graphql_fields = [
    GraphQLString("text", required=True),
    GraphQLString("button_label", required=True),
    GraphQLString("url", required=True),
    GraphQLString("style", required=True),
]
register_streamfield_block(HeroBlock)
register_streamfield_block(CTABlock)


def _choice(child, info) -> Choice:
    """Choose once per block per request; every field of the block reads the same choice."""
    choice = getattr(child, "_tailored_choice", None)
    if choice is None:
        choice = child.block.choose(child.value, getattr(info.context, "visitor", None))
        child._tailored_choice = choice
    return choice


class PersonalizedBlockType(graphene.ObjectType):
    """A block whose content depends on the visitor: only the variant chosen for them is exposed."""

    variant = graphene.String(
        required=True, description='The key of the variant chosen for this visitor, or "fallback".'
    )
    variant_label = graphene.String(required=True, description="The editor's label of the chosen variant.")
    blocks = graphene.List(
        graphene.NonNull(StreamFieldInterface), required=True, description="The chosen variant's content."
    )

    class Meta:
        name = "PersonalizedBlock"
        interfaces = (StreamFieldInterface,)

    def resolve_variant(self, info):
        return _choice(self, info).key

    def resolve_variant_label(self, info):
        return _choice(self, info).label

    def resolve_blocks(self, info):
        return list(_choice(self, info).content)

    def resolve_raw_value(self, info):
        return json.dumps(_choice(self, info).content.get_prep_value())


registry.streamfield_blocks[PersonalizedBlock] = PersonalizedBlockType
