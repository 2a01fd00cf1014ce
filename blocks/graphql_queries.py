"""Site-level GraphQL queries (issue 6): segments for editors, product lists for the requesting
visitor, and `page(..., preview: {...})` so an editor's headless preview renders a page as an
audience would see it.

They live in `tailored.blocks` because they join the product lists of the blocks, the audience
preview of `tailored.frontend` and the segments of the engine (which imports neither).

Refusals: `segments`, and `page` with a `preview` argument, are for editors only
(`services.is_editor`: a logged-in user with Wagtail admin access). Anyone else gets `null` with a
GraphQL error whose `extensions.code` is FORBIDDEN; a preview is never silently ignored, so a
frontend cannot mistake the real visitor's page for the audience's.
"""

from __future__ import annotations

import time
from functools import cache
from urllib.parse import urlencode

import graphene
from grapple.registry import registry
from grapple.types.interfaces import get_page_interface
from grapple.types.pages import PagesQuery
from wagtail.models import Page

from graphql import GraphQLError
from tailored.api import dataloaders
from tailored.blocks import products as catalog
from tailored.blocks.commerce import PRODUCT_SOURCES, STRATEGIES
from tailored.blocks.visitors import visitor_of_info
from tailored.context import context_from_request
from tailored.experiments.pages import viewable
from tailored.experiments.services import arm_for, experiment_cache
from tailored.frontend.preview import audience_visitor, parse_audience
from tailored.ml.catalog import PRODUCT, item_type_choices, recommendable
from tailored.models import Segment
from tailored.products import category_model, product_model, product_model_label
from tailored.services import is_editor

FORBIDDEN = "FORBIDDEN"
BAD_USER_INPUT = "BAD_USER_INPUT"
MAX_FIRST = 100
STRATEGY_NAMES = tuple(name for name, _ in STRATEGIES)
CAROUSEL_SOURCES = tuple(name for name, _ in PRODUCT_SOURCES if name != "manual")



@cache
def _grapple_pages():
    """grapple's pages mixin, built when the schema is (not at import: building it registers a
    type that grapple's app-ready type loading must not see)."""
    return PagesQuery()


def forbidden(what: str) -> GraphQLError:
    return GraphQLError(f"{what} is for editors only: sign in to the Wagtail admin.", extensions={"code": FORBIDDEN})


def bad_input(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": BAD_USER_INPUT})


def _is_page_id(item: object) -> bool:
    """Whether `item` can be a page's id: ASCII digits, 19 at most (a 64-bit key). Anything else
    names no page, as an unknown id does. (str.isdigit also takes "²", which int() refuses.)"""
    text = str(item) if item is not None else ""
    return text.isascii() and text.isdecimal() and len(text) <= 19


def _product_type():
    return registry.pages[product_model()]


class SegmentType(graphene.ObjectType):
    slug = graphene.String(required=True)
    name = graphene.String(required=True)
    description = graphene.String(required=True)
    enabled = graphene.Boolean(required=True)
    priority = graphene.Int(required=True, description="Higher priorities are listed first.")
    rule = graphene.JSONString(required=True, description="The segment's rule, as the JSON the segment builder saves.")

    class Meta:
        name = "Segment"


class AudienceInput(graphene.InputObjectType):
    """Who an editor previews as (the same values as the admin's preview picker; invalid ones are
    dropped). A daypart or weekday left out means now; any other fact left out is unknown."""

    segments = graphene.List(graphene.NonNull(graphene.String), description="Segment slugs (unknown or disabled ones are dropped).")
    device = graphene.String(description="desktop, mobile or tablet (default desktop).")
    daypart = graphene.String(description="morning, afternoon, evening or night.")
    weekday = graphene.String(description="mon ... sun.")
    country = graphene.String(description='ISO country ("GB") or region ("GB-ENG").')
    weather = graphene.String()
    campaign = graphene.String(description="A utm_campaign value.")


def audience_query(preview: dict) -> str:
    """The input as the audience query string `tailored.frontend.preview.parse_audience` validates."""
    pairs = [("segments", ",".join(preview.get("segments") or ()))]
    pairs += [(key, preview[key]) for key in ("device", "daypart", "weekday", "country", "weather", "campaign") if preview.get(key)]
    return urlencode(pairs)


def apply_preview(request, preview: dict) -> None:
    """Make `request` resolve to the audience's synthetic visitor for the rest of the operation."""
    known = Segment.objects.filter(enabled=True).values_list("slug", flat=True)
    audience = parse_audience(audience_query(preview), known)
    now = time.time()
    own = context_from_request(request, now)
    visitor = audience_visitor(audience, now, own.daypart, own.weekday)
    request._tailored_visitor = visitor
    request.visitor = visitor  # the middleware's lazy visitor may already have been evaluated


def _page_field() -> graphene.Field:
    grapple_page = _grapple_pages().page
    return graphene.Field(
        grapple_page._type,
        args={
            **grapple_page.args,
            "preview": graphene.Argument(
                AudienceInput,
                description=(
                    "Editors only: resolve the page, and every personalized block in it, as this audience "
                    "would see it. Anyone else gets null and a FORBIDDEN error."
                ),
            ),
        },
        description="A page by id, slug, urlPath or preview token; personalized for the requesting visitor, or for `preview`.",
    )


class SiteQuery:
    """Segments; `site_query()` adds `page`, and the product lists when the site has products."""

    segments = graphene.List(
        graphene.NonNull(SegmentType),
        description=(
            "Every segment, enabled or not, highest priority first. Editors only: anyone else gets "
            "null and a FORBIDDEN error."
        ),
    )
    def resolve_segments(self, info):
        if not is_editor(info.context):
            raise forbidden("The segment list")
        return dataloaders.current().segments.all()


class ProductQuery:
    """Product lists for the requesting visitor (only on sites with a PRODUCT_MODEL)."""

    recommendations = graphene.List(
        graphene.NonNull(_product_type),
        required=True,
        first=graphene.Int(default_value=10, description=f"At most this many (0 to {MAX_FIRST})."),
        strategy=graphene.String(default_value="trending", description=", ".join(STRATEGY_NAMES) + "."),
        item=graphene.ID(description="A product id to leave out (the one being viewed)."),
        description="Products for the requesting visitor, by strategy (what the recommendation block shows them).",
    )
    recommended_pages = graphene.List(
        graphene.NonNull(lambda: get_page_interface()),
        required=True,
        item_type=graphene.String(required=True, description="A registered item type other than product (register_tailored_recommendable), e.g. article."),
        first=graphene.Int(default_value=10, description=f"At most this many (0 to {MAX_FIRST})."),
        strategy=graphene.String(default_value="recommended", description=", ".join(STRATEGY_NAMES) + " (recently_viewed gives none: profiles keep products)."),
        item=graphene.ID(description="The page being viewed: left out, and it seeds the recommendations."),
        description="Pages of one registered item type for the requesting visitor (what a recommendation block with that item type shows them); products stay on `recommendations`.",
    )
    carousel = graphene.List(
        graphene.NonNull(_product_type),
        required=True,
        source=graphene.String(required=True, description=", ".join(CAROUSEL_SOURCES) + "."),
        category=graphene.String(description="The category's slug (source: category)."),
        tag=graphene.String(description="A tag name or slug (source: tag)."),
        first=graphene.Int(default_value=8, description=f"At most this many (0 to {MAX_FIRST})."),
        description="A product row for the requesting visitor (what a carousel block with this source shows them).",
    )

    def resolve_recommendations(self, info, first=10, strategy="trending", item=None):
        first = _checked_first(first)
        if strategy not in STRATEGY_NAMES:
            raise bad_input(f"Unknown strategy {strategy!r}: use one of {', '.join(STRATEGY_NAMES)}.")
        visitor = visitor_of_info(info)
        profile = visitor.profile if visitor is not None else None
        hidden = set(profile.down_votes) if profile is not None else set()
        if item:
            hidden.add(str(item))
        if strategy == "recently_viewed":
            return catalog.recently_viewed(profile, first, hidden)
        if strategy == "recommended":
            return catalog.recommended(profile, first, exclude={str(item)} if item else ())
        return catalog.trending(first, exclude=hidden)

    def resolve_recommended_pages(self, info, item_type, first=10, strategy="recommended", item=None):
        first = _checked_first(first)
        if strategy not in STRATEGY_NAMES:
            raise bad_input(f"Unknown strategy {strategy!r}: use one of {', '.join(STRATEGY_NAMES)}.")
        if item_type == PRODUCT or recommendable(item_type) is None:
            known = ", ".join(name for name, _ in item_type_choices() if name != PRODUCT) or "none registered"
            raise bad_input(f"Unknown item type {item_type!r} (products: use `recommendations`): use one of {known}.")
        visitor = visitor_of_info(info)
        profile = visitor.profile if visitor is not None else None
        page = Page.objects.filter(pk=int(item)).first() if _is_page_id(item) else None
        return catalog.recommended_pages(profile, first, item_type, page=page, strategy=strategy)

    def resolve_carousel(self, info, source, category=None, tag=None, first=8):
        first = _checked_first(first)
        if source not in CAROUSEL_SOURCES:
            raise bad_input(f"Unknown source {source!r}: use one of {', '.join(CAROUSEL_SOURCES)}.")
        visitor = visitor_of_info(info)
        profile = visitor.profile if visitor is not None else None
        hidden = profile.down_votes if profile is not None else frozenset()
        if source == "category":
            if not category:
                raise bad_input("source: category needs `category` (a category slug).")
            found = category_model().objects.live().filter(slug=category).values_list("pk", flat=True).first()
            return catalog.in_category(found, first, hidden)
        if source == "tag":
            if not tag:
                raise bad_input("source: tag needs `tag`.")
            return catalog.with_tag(tag, first, hidden)
        if source == "recently_viewed":
            return catalog.recently_viewed(profile, first, hidden)
        if source == "recommended":
            return catalog.recommended(profile, first)
        return catalog.trending(first, exclude=hidden)


@cache
def site_query() -> type:
    """The mixin for the root Query, put ahead of grapple's own mixins so that its `page`
    (grapple's, same arguments, plus `preview`) replaces grapple's."""

    def resolve_page(self, info, preview=None, **kwargs):
        if preview is not None:
            if not is_editor(info.context):
                raise forbidden("Previewing as an audience")
            apply_preview(info.context, preview)
        page = _grapple_pages().resolve_page(self, info, **kwargs)
        # A whole-page experiment: the visitor's arm's alternative, as SSR serves it (issue 9).
        return page if preview is not None else experiment_alternative(page, info.context)

    bases = (SiteQuery, ProductQuery) if product_model_label() is not None else (SiteQuery,)
    return type("SiteQueryWithPage", bases, {"page": _page_field(), "resolve_page": resolve_page})


def experiment_alternative(page, request):
    """The page a visitor gets at `page`'s URL: under a running page experiment, their arm's live
    alternative (counting the exposure, as SSR's `before_serve_page` hook does), else `page`."""
    live = experiment_cache.peek().by_page.get(getattr(page, "pk", None))
    if live is None or getattr(request, "is_preview", False):
        return page
    alternative_id = live.pages.get(arm_for(getattr(request, "visitor", None), live))
    if not alternative_id or alternative_id == page.pk:
        return page
    alternative = Page.objects.live().filter(pk=alternative_id).first()
    if alternative is None or not viewable(alternative, request):  # its view restrictions hold here too
        return page
    return alternative.specific


def _checked_first(first: int | None) -> int:
    if first is None:
        return 0
    if not 0 <= first <= MAX_FIRST:
        raise bad_input(f"`first` must be between 0 and {MAX_FIRST}.")
    return first
