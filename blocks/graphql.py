"""GraphQL types for the blocks, on grapple's StreamFieldInterface.

A PersonalizedBlock exposes only what the requesting visitor would see: the chosen variant's
key and blocks, and a rawValue holding that content alone. The other variants never leave the
server. Selection is the same `PersonalizedBlock.choose` that SSR rendering uses.

Blocks whose content depends on the visitor (product lists, the message's tokens, the survey,
an offer's expiry) resolve through the same block methods the templates call.
"""

from __future__ import annotations

import json

import graphene
from django.core.serializers.json import DjangoJSONEncoder
from grapple.helpers import register_streamfield_block
from grapple.models import GraphQLImage, GraphQLRichText, GraphQLString
from grapple.registry import registry
from grapple.types.interfaces import StreamFieldInterface

from tailored import decisions
from tailored.decisions import Decision
from tailored.products import product_model, product_model_label

from .commerce import OfferBannerBlock, ProductCarouselBlock, RecommendationBlock
from .content import CTABlock, HeroBlock
from .engagement import OnboardingSurveyBlock, PersonalizedMessageBlock, survey_url
from .media import ImageWithTextBlock
from .personalized import Choice, PersonalizedBlock
from .visitors import visitor_of_info

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
# Field names shared between block types keep one type everywhere ("heading", "url", ... are
# non-null strings, empty when unset): GraphQL refuses to merge e.g. `url: String!` and
# `url: String` in one fragment over StreamFieldInterface.
ImageWithTextBlock.graphql_fields = [
    GraphQLImage("image", required=True),
    GraphQLString("heading", required=True),
    GraphQLRichText("body"),
    GraphQLString("image_position", required=True, description='"left" or "right".'),
    GraphQLString("link_label", required=True),
    GraphQLString("url", required=True),
]
register_streamfield_block(HeroBlock)
register_streamfield_block(CTABlock)
register_streamfield_block(ImageWithTextBlock)


def _choice(child, info) -> Choice:
    """Choose once per block per request; every field of the block reads the same choice."""
    choice = getattr(child, "_tailored_choice", None)
    if choice is None:
        choice = child.block.choose(child.value, visitor_of_info(info))
        child._tailored_choice = choice
        experiment, arm = getattr(choice, "experiment", None), getattr(choice, "arm", None)
        held = getattr(choice, "holdout", False)
        decisions.record(info.context, Decision(str(child.id), choice.key, experiment, arm, held))
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


def _product_type():
    return registry.pages[product_model()]


def _limited(products: list, limit: int | None) -> list:
    return products if limit is None else products[: max(limit, 0)]


def _raw(child) -> str:
    return json.dumps(child.block.get_prep_value(child.value), cls=DjangoJSONEncoder)


class OfferBannerBlockType(graphene.ObjectType):
    """A discount code with an expiry; once expired, `active` is false and `code` null."""

    heading = graphene.String(required=True, description="The offer's headline.")
    text = graphene.String(required=True, description="A line about the offer; empty when none.")
    code = graphene.String(description="The code to enter at checkout; null once the offer has expired.")
    expires_at = graphene.DateTime(required=True, description="When the offer ends.")
    active = graphene.Boolean(required=True, description="False once the offer has expired: show nothing then.")
    button_label = graphene.String(required=True, description="The button's text; empty for no button.")
    url = graphene.String(required=True, description="Where the button leads; empty for no button.")

    class Meta:
        name = "OfferBannerBlock"
        interfaces = (StreamFieldInterface,)

    def resolve_heading(self, info):
        return self.value["heading"]

    def resolve_text(self, info):
        return self.value["text"] or ""

    def resolve_code(self, info):
        return self.value["code"] if self.block.is_active(self.value) else None

    def resolve_expires_at(self, info):
        return self.value["expires_at"]

    def resolve_active(self, info):
        return self.block.is_active(self.value)

    def resolve_button_label(self, info):
        return self.value["button_label"] or ""

    def resolve_url(self, info):
        return self.value["url"] or ""

    def resolve_raw_value(self, info):
        raw = self.block.get_prep_value(self.value)
        if not self.block.is_active(self.value):
            raw["code"] = None
        return json.dumps(raw, cls=DjangoJSONEncoder)


class ProductCarouselBlockType(graphene.ObjectType):
    """A row of products, resolved for the requesting visitor: the list SSR renders for them."""

    heading = graphene.String(required=True, description="The carousel's heading; empty when none.")
    source = graphene.String(
        required=True, description="manual, category, tag, recently_viewed, trending or recommended."
    )
    count = graphene.Int(required=True, description="The most products shown.")
    products = graphene.List(
        graphene.NonNull(_product_type),
        required=True,
        limit=graphene.Int(description="At most this many (a headless card row may show fewer than SSR)."),
        description="The products this visitor sees, in order.",
    )

    class Meta:
        name = "ProductCarouselBlock"
        interfaces = (StreamFieldInterface,)

    def resolve_heading(self, info):
        return self.value["heading"] or ""

    def resolve_source(self, info):
        return self.value["source"]

    def resolve_count(self, info):
        return self.value["count"]

    def resolve_products(self, info, limit=None):
        return _limited(self.block.products_for(self.value, visitor_of_info(info)), limit)

    def resolve_raw_value(self, info):
        return _raw(self)


class RecommendationBlockType(graphene.ObjectType):
    """Products recommended to the requesting visitor; send thumbs up/down as recommendation_feedback events."""

    heading = graphene.String(required=True, description="The block's heading.")
    strategy = graphene.String(required=True, description="recommended, trending or recently_viewed.")
    count = graphene.Int(required=True, description="The most products shown.")
    ask_feedback = graphene.Boolean(required=True, description="Whether to show thumbs up/down buttons.")
    products = graphene.List(
        graphene.NonNull(_product_type),
        required=True,
        limit=graphene.Int(description="At most this many (a headless card row may show fewer than SSR)."),
        description="The products for this visitor, in order.",
    )

    class Meta:
        name = "RecommendationBlock"
        interfaces = (StreamFieldInterface,)

    def resolve_heading(self, info):
        return self.value["heading"]

    def resolve_strategy(self, info):
        return self.value["strategy"]

    def resolve_count(self, info):
        return self.value["count"]

    def resolve_ask_feedback(self, info):
        return bool(self.value["ask_feedback"])

    def resolve_products(self, info, limit=None):
        return _limited(self.block.products_for(self.value, visitor_of_info(info)), limit)

    def resolve_raw_value(self, info):
        return _raw(self)


class PersonalizedMessageBlockType(graphene.ObjectType):
    """A sentence with the visitor's tokens filled in (or their fallbacks)."""

    message = graphene.String(required=True, description="The text with {first_name} and the other tokens replaced.")
    link_label = graphene.String(required=True, description="The link's text; empty for no link.")
    url = graphene.String(required=True, description="Where the link leads; empty for no link.")

    class Meta:
        name = "PersonalizedMessageBlock"
        interfaces = (StreamFieldInterface,)

    def resolve_message(self, info):
        return self.block.message(self.value, info.context, visitor_of_info(info))

    def resolve_link_label(self, info):
        return self.value["link_label"] or ""

    def resolve_url(self, info):
        return self.value["url"] or ""

    def resolve_raw_value(self, info):
        return _raw(self)


class SurveyCategory(graphene.ObjectType):
    """A category the onboarding survey offers."""

    slug = graphene.String(required=True, description="What to post as a chosen category.")
    title = graphene.String(required=True, description="The category's name.")


class OnboardingSurveyBlockType(graphene.ObjectType):
    """Asks a consenting visitor with no history for their favourite categories."""

    heading = graphene.String(required=True, description="The question.")
    intro = graphene.String(description="A line under the question.")
    button_label = graphene.String(required=True, description="The submit button's text.")
    thanks = graphene.String(required=True, description="What to say once the answer is saved.")
    should_ask = graphene.Boolean(
        required=True, description="Whether this visitor should see the survey (consent given, no history yet)."
    )
    categories = graphene.List(
        graphene.NonNull(SurveyCategory), required=True, description="The categories to choose from."
    )
    action = graphene.String(
        description='Where to POST the answer (form field "category", repeated, or JSON {"categories": [...]}).'
    )

    class Meta:
        name = "OnboardingSurveyBlock"
        interfaces = (StreamFieldInterface,)

    def resolve_heading(self, info):
        return self.value["heading"]

    def resolve_intro(self, info):
        return self.value["intro"] or None

    def resolve_button_label(self, info):
        return self.value["button_label"]

    def resolve_thanks(self, info):
        return self.value["thanks"]

    def resolve_should_ask(self, info):
        return self.block.should_ask(visitor_of_info(info))

    def resolve_categories(self, info):
        return [SurveyCategory(slug=slug, title=title) for slug, title in self.block.categories_for(self.value)]

    def resolve_action(self, info):
        return survey_url()

    def resolve_raw_value(self, info):
        return _raw(self)


registry.streamfield_blocks[OfferBannerBlock] = OfferBannerBlockType
registry.streamfield_blocks[PersonalizedMessageBlock] = PersonalizedMessageBlockType
if product_model_label() is not None:  # product types name the site's product page type
    registry.streamfield_blocks[ProductCarouselBlock] = ProductCarouselBlockType
    registry.streamfield_blocks[RecommendationBlock] = RecommendationBlockType
    registry.streamfield_blocks[OnboardingSurveyBlock] = OnboardingSurveyBlockType
from . import experiments_graphql  # noqa: E402,F401  (the ExperimentBlock's type, issue 8)
