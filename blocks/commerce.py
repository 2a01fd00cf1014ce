"""Shop blocks: an offer banner that hides itself once expired, a product carousel (picked
products or a query) and a recommendation block with thumbs up/down feedback.

Product lists come from `tailored.blocks.products` (imported as `catalog`) in a constant number of queries per block, whatever
the number of products (issue 5: the homepage has no N+1).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import dateformat, timezone
from django.utils.functional import cached_property
from wagtail import blocks
from wagtail.blocks.list_block import ListBlockValidationError

from tailored.api import dataloaders
from tailored.core.types import Visitor
from tailored.ml.catalog import PRODUCT, item_type_choices
from tailored.products import category_model, product_model

from . import products as catalog
from .choices import StaticChoiceBlock
from .links import LinkBlock, SafeLinksMixin
from .visitors import visitor_of

PRODUCT_SOURCES = [
    ("manual", "Products I pick"),
    ("category", "Products of a category"),
    ("tag", "Products with a tag"),
    ("recently_viewed", "What the visitor viewed recently"),
    ("trending", "Trending this week"),
    ("recommended", "Recommended for the visitor"),
]
STRATEGIES = [
    ("recommended", "Recommended for the visitor"),
    ("trending", "Trending this week"),
    ("recently_viewed", "What the visitor viewed recently"),
]


def aware(value: datetime | None) -> datetime | None:
    """A stored datetime as an aware one (naive values are in the site's time zone)."""
    if value is None or timezone.is_aware(value):
        return value
    return timezone.make_aware(value)


class ProductChooserBlock(blocks.PageChooserBlock):
    """A product page of the site's PRODUCT_MODEL. Loading a list of them is one query that also
    brings each product's category, image and renditions (what a product card needs)."""

    @cached_property
    def target_models(self):
        # Resolved when first used, not at import: the model is the site's, named in settings.
        return [product_model()]

    def bulk_to_python(self, values):
        found = catalog.product_queryset(live=False).in_bulk([v for v in values if v is not None])
        dataloaders.current().renditions.prime(product.image for product in found.values())
        return [found.get(v) for v in values]


class CategoryChooserBlock(blocks.PageChooserBlock):
    """A category page: the model of the product's `category` field, or CATEGORY_MODEL."""

    @cached_property
    def target_models(self):
        return [category_model()]


class OfferBannerBlock(SafeLinksMixin, blocks.StructBlock):
    heading = blocks.CharBlock(max_length=120)
    text = blocks.TextBlock(required=False, max_length=300)
    code = blocks.CharBlock(max_length=40, help_text="The code visitors enter at checkout, e.g. SPRING20.")
    expires_at = blocks.DateTimeBlock(help_text="From this moment the banner hides itself.")
    button_label = blocks.CharBlock(required=False, max_length=40)
    url = LinkBlock(required=False, max_length=300, help_text="A path such as /fashion/ or a full URL.")

    class Meta:
        icon = "tag"
        template = "tailored/blocks/offer_banner.html"
        group = "Shop"
        description = "A discount code with an expiry date; it disappears once the offer has expired."

    def get_preview_value(self):
        # A fixed preview date would expire (and hide the preview) one day.
        return self.to_python(
            {
                "heading": "20% off everything outdoors",
                "text": "Tents, boots and packs for your next weekend outside.",
                "code": "TRAIL20",
                "expires_at": (timezone.now() + timedelta(days=14)).isoformat(),
                "button_label": "Shop outdoors",
                "url": "/",
            }
        )

    def is_active(self, value: Any, now: float | None = None) -> bool:
        expires_at = aware(value["expires_at"])
        return expires_at is not None and expires_at.timestamp() > (time.time() if now is None else now)

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        context["active"] = self.is_active(value)
        expires_at = aware(value["expires_at"])
        context["ends"] = dateformat.format(timezone.localtime(expires_at), "j F Y") if expires_at else ""
        return context


class ProductCarouselBlock(blocks.StructBlock):
    heading = blocks.CharBlock(required=False, max_length=120)
    source = StaticChoiceBlock(choices=PRODUCT_SOURCES, default="manual", help_text="Where the products come from.")
    products = blocks.ListBlock(ProductChooserBlock(), default=[], required=False, help_text="For 'Products I pick'.")
    category = CategoryChooserBlock(required=False, help_text="For 'Products of a category'.")
    tag = blocks.CharBlock(required=False, max_length=100, help_text="For 'Products with a tag', e.g. audio.")
    count = blocks.IntegerBlock(default=8, min_value=1, max_value=catalog.MAX_COUNT, help_text="At most this many.")

    class Meta:
        icon = "list-ul"
        template = "tailored/blocks/product_carousel.html"
        group = "Shop"
        description = "A row of product cards: products you pick, or a category, a tag, recently viewed or trending."
        preview_value = {"heading": "Trending this week", "source": "trending", "count": 4}

    def clean(self, value):
        value = super().clean(value)
        needs = {"manual": "products", "category": "category", "tag": "tag"}.get(value["source"])
        if needs and not value[needs]:
            message = ValidationError(f"Choose the {needs} this carousel shows, or pick another source.")
            if needs == "products":
                message = ListBlockValidationError(non_block_errors=[message])
            raise blocks.StructBlockValidationError(block_errors={needs: message})
        return value

    def products_for(self, value: Any, visitor: Visitor | None, now: float | None = None) -> list:
        """The products this visitor sees, at most `count`, in a constant number of queries."""
        count = value["count"] or 8
        source = value["source"]
        # The editor's sources are the same for everyone: they never touch the (lazy) visitor, so
        # a page of them resolves no profile and no segments. A visitor's thumbs down hides a
        # product from the sources chosen for them (recently viewed, trending, recommended).
        if source == "manual":
            return [p for p in value["products"] if p is not None and p.live][:count]
        if source == "category":
            return catalog.in_category(value["category"].pk if value["category"] else None, count)
        if source == "tag":
            return catalog.with_tag(value["tag"], count)
        profile = visitor.profile if visitor is not None else None
        return _by_strategy(source, profile, count, now)

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        context["products"] = self.products_for(value, visitor_of(parent_context))
        return context


class RecommendationBlock(blocks.StructBlock):
    heading = blocks.CharBlock(default="Recommended for you", max_length=120)
    # Products, or a page type the site registers (register_tailored_recommendable; issue 22 item 6).
    item_type = blocks.ChoiceBlock(
        choices=item_type_choices, default=PRODUCT, required=False,
        help_text="What to recommend: products, or another page type the site registers (articles...).",
    )
    strategy = StaticChoiceBlock(choices=STRATEGIES, default="recommended")
    count = blocks.IntegerBlock(default=4, min_value=1, max_value=12)
    ask_feedback = blocks.BooleanBlock(
        default=True,
        required=False,
        help_text="Show thumbs up/down buttons; a thumbs down hides the product from the visitor's recommendations.",
    )

    class Meta:
        icon = "pick"
        template = "tailored/blocks/recommendations.html"
        group = "Shop"
        description = "Products (or articles, or any page type the site registers) picked for each visitor, with thumbs up/down feedback."
        preview_value = {"heading": "Recommended for you", "item_type": PRODUCT, "strategy": "trending", "count": 4, "ask_feedback": True}

    def products_for(self, value: Any, visitor: Visitor | None, now: float | None = None, page: Any = None) -> list:
        """The items this visitor sees: products, or live pages of the block's item type (never
        `page`, the one being viewed, which also seeds their recommendations)."""
        return self.serve(value, visitor, now, page).items

    def serve(self, value: Any, visitor: Visitor | None, now: float | None = None, page: Any = None) -> catalog.Served:
        """The items this visitor sees and what chose them ("model:<version>", or the fallback's
        name): the variant its impressions and clicks count under (issue 17 item 5)."""
        profile = visitor.profile if visitor is not None else None
        item_type = value.get("item_type") or PRODUCT
        if item_type != PRODUCT:
            return catalog.recommend_pages(profile, value["count"] or 4, item_type, page=page, strategy=value["strategy"], now=now)
        return _served_by_strategy(value["strategy"], profile, value["count"] or 4, now)

    def page_cache_part(self, value: Any, visitor: Visitor | None) -> str:
        """What the page cache (tailored.blocks.page_cache) keys this block by: for products the
        ids shown and what chose them (the wrapper's data-tl-variant names the model version, so
        a new version showing the same ids is a new page); for another item type, which depends
        on the page being read (the cache key has the page), the model version and everything of
        the visitor it reads, down to what they already have (a digest of it)."""
        item_type = value.get("item_type") or PRODUCT
        if item_type == PRODUCT:
            served = self.serve(value, visitor)
            return ",".join(str(product.pk) for product in served.items) + f"|{served.source}"
        profile = visitor.profile if visitor is not None else None
        loaded = catalog.registry.load(catalog.RECOMMENDER)
        facts = (
            ",".join(item for item, _ in profile.recent_items) if profile else "",
            ",".join(profile.preferences) if profile else "",
            ",".join(sorted(profile.down_votes)) if profile else "",
            catalog.had_digest(profile),  # pages read (and products had) are never offered
        )
        return "|".join((item_type, value["strategy"], loaded.version if loaded is not None else "-", *facts))

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        page = (parent_context or {}).get("page")
        served = self.serve(value, visitor_of(parent_context), page=page)
        is_product = (value.get("item_type") or PRODUCT) == PRODUCT
        context["products"], context["pages"] = (served.items, []) if is_product else ([], served.items)
        # The decision tracker.js reads from the wrapper (data-tl-block-id, data-tl-variant), so
        # the list's impressions and clicks are counted per model version like any decided block.
        context["served_by"] = served.source
        context["tl_block_id"] = own_block_id(value, parent_context or {})
        return context


def own_block_id(value: Any, context: Any) -> str | None:
    """This block's stream block id. Wagtail puts it in the context as `id`, unless an enclosing
    block's id is there already (inside a personalized variant or an experiment alternative,
    whose `choice` is in the context): then it is the id of the choice's child holding `value`."""
    content = getattr(context.get("choice"), "content", None)
    if content is not None:  # nested: never the enclosing block's id (its cell is its own)
        return next((child.id for child in content if child.value is value), None)
    return context.get("id")


def _served_by_strategy(strategy: str, profile, count: int, now: float | None) -> catalog.Served:
    if strategy == "recommended":
        return catalog.recommend(profile, count, now)
    source = catalog.RECENTLY_VIEWED if strategy == "recently_viewed" else catalog.POPULAR
    return catalog.Served(_by_strategy(strategy, profile, count, now), source)


def _by_strategy(strategy: str, profile, count: int, now: float | None) -> list:
    hidden = profile.down_votes if profile is not None else frozenset()
    if strategy == "recently_viewed":
        return catalog.recently_viewed(profile, count, hidden)
    if strategy == "recommended":
        return catalog.recommended(profile, count, now)
    return catalog.trending(count, now, hidden)
