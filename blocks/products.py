"""Product lists for the carousel and recommendation blocks.

Each function returns at most `count` live products, loaded with everything a product card shows
(category, image and its renditions) in a constant number of queries, whatever `count` is. They
load through the request's loaders (`tailored.api.dataloaders`): a product that appears in
several rows of one page or one GraphQL response is read once. The
product model is the site's, named by `PERSONALIZATION["PRODUCT_MODEL"]` (tailored.products).

`recommended` asks the trained recommender (issue 7) and falls back to trending; `recommend`
also says which served the list (`Served.source`: "model:<version>" or "popular"), the variant the
recommendation block's impressions and clicks count under (issue 17 item 5).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.utils.text import slugify

from tailored import conf, seen_items
from tailored.api import dataloaders
from tailored.core.types import Profile
from tailored.ml import registry
from tailored.ml.catalog import PRODUCT
from tailored.models import Event
from tailored.products import product_model, product_model_label

CARD_RENDITION = "fill-480x360"
TRENDING_DAYS = 7
TRENDING_CACHE_SECONDS = 300
MAX_COUNT = 24
RECOMMENDER = "recommender"  # the registry name tailored_train publishes under
# MMR trade-off: a little diversity, so a row is not four near-identical products.
RECOMMENDATION_DIVERSITY = 0.3

# What served a list when no model did: the recommendation block's variant for its impressions.
POPULAR = "popular"  # trending products (the block's strategy, or the fallback without a model)
NEWEST = "newest"  # the newest pages of a registered item type (the fallback without a model)
RECENTLY_VIEWED = "recently_viewed"
MODEL_PREFIX = "model:"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Served:
    """A recommendation list and what produced it: "model:<version>" when the trained model
    ranked it (topped up or not), else the fallback's name (POPULAR, NEWEST, RECENTLY_VIEWED)."""

    items: list = field(default_factory=list)
    source: str = POPULAR


def model_source(version: str) -> str:
    return f"{MODEL_PREFIX}{version}"


def product_queryset(live: bool = True) -> QuerySet:
    """Products with their category and image joined (renditions: `with_renditions`)."""
    model = product_model()
    products = model.objects.live() if live else model.objects.all()
    return products.select_related("category", "image")


def with_renditions(products: list) -> list:
    """`products`, remembered by this request's product loader, with every image's renditions
    fetched in one query (none when all were fetched before)."""
    loaders = dataloaders.current()
    loaders.model(product_model_label(), product_queryset).prime(products)
    loaders.renditions.prime(product.image for product in products)
    return products


def by_ids(ids: Iterable[object], count: int = MAX_COUNT, exclude: Iterable[str] = ()) -> list:
    """Products in the order of `ids` (duplicates, unknown, unpublished and excluded ids dropped)."""
    excluded = {str(item) for item in exclude}
    wanted = list(dict.fromkeys(int(str(i)) for i in ids if str(i).isdigit() and str(i) not in excluded))
    if not wanted or count <= 0:
        return []
    found = dataloaders.current().model(product_model_label(), product_queryset).load_many(wanted[: count * 2])
    return with_renditions([found[pk] for pk in wanted if pk in found][:count])


def in_category(category_id: int | None, count: int, exclude: Iterable[str] = ()) -> list:
    if category_id is None:
        return []
    products = product_queryset().filter(category_id=category_id).exclude(pk__in=_pks(exclude))
    return with_renditions(list(products.order_by("title")[:count]))


def with_tag(tag: str, count: int, exclude: Iterable[str] = ()) -> list:
    """Products tagged `tag` (by name, case-insensitive, or by slug)."""
    tag = (tag or "").strip()
    if not tag:
        return []
    model = product_model()
    tagged = model.objects.filter(Q(tags__name__iexact=tag) | Q(tags__slug=slugify(tag))).values("pk")
    products = product_queryset().filter(pk__in=tagged).exclude(pk__in=_pks(exclude))
    return with_renditions(list(products.order_by("title")[:count]))


def recently_viewed(profile: Profile | None, count: int, exclude: Iterable[str] = ()) -> list:
    """What the visitor looked at last, newest first (from the profile: no query for the history)."""
    if profile is None or not profile.recent_items:
        return []
    return by_ids((item for item, _ in profile.recent_items), count, exclude)


def trending_ids(count: int, now: float | None = None, days: int = TRENDING_DAYS) -> list[str]:
    """The most viewed products of the last `days` days (by stored page_view events), then the
    newest products. A site-wide ranking: computed at most once per TRENDING_CACHE_SECONDS, not
    once per request, and loaded by id, so rows that share products read them once."""
    key = f"tailored:trending:v2:{days}"
    ranked = _cached(key)
    if ranked is None:
        since = datetime.fromtimestamp(time.time() if now is None else now, UTC) - timedelta(days=days)
        rows = (
            Event.objects.filter(type="page_view", ts__gte=since)
            .exclude(item="")
            .values("item")
            .annotate(views=Count("id"))
            .order_by("-views", "item")[: MAX_COUNT * 4]
        )
        viewed = [row["item"] for row in rows]
        # Viewed ids of products since deleted or unpublished (or never products at all) must
        # not crowd live ones out of the ranking: keep only the live ones.
        live = {str(pk) for pk in product_queryset().filter(pk__in=_pks(viewed)).values_list("pk", flat=True)}
        newest = product_queryset().order_by("-first_published_at", "-pk").values_list("pk", flat=True)
        ranked = list(dict.fromkeys([*(i for i in viewed if i in live), *(str(pk) for pk in newest[: MAX_COUNT * 4])]))
        _keep(key, ranked)
    return ranked[: count * 2]


# The site's default Django cache may be Redis (or memcached): when it is away, the ranking is
# computed from the database, as on a miss, and the page still renders.
def _cached(key: str) -> list[str] | None:
    try:
        return cache.get(key)
    except Exception as error:
        logger.warning("trending products not read from the cache (%s): computed", error)
        return None


def _keep(key: str, ranked: list[str]) -> None:
    try:
        cache.set(key, ranked, TRENDING_CACHE_SECONDS)
    except Exception as error:
        logger.warning("trending products not kept in the cache (%s)", error)


def trending(count: int, now: float | None = None, exclude: Iterable[str] = ()) -> list:
    """Most viewed in the last week; topped up with the newest products when few were viewed."""
    excluded = {str(item) for item in exclude}
    return by_ids(trending_ids(count + len(excluded), now), count, excluded)


def recommended(profile: Profile | None, count: int, now: float | None = None, exclude: Iterable[str] = ()) -> list:
    """Products for this visitor from the trained recommender (tailored.ml); see `recommend`."""
    return recommend(profile, count, now, exclude).items


def recommend(profile: Profile | None, count: int, now: float | None = None, exclude: Iterable[str] = ()) -> Served:
    """Products for this visitor from the trained recommender (tailored.ml): neighbours of
    what they viewed, their onboarding categories, demoting what they voted down, never what is
    in their cart, excluded or out of stock. Without a usable model (none trained yet, a corrupt
    file, an error while scoring): trending minus their down votes, with a logged warning."""
    down = profile.down_votes if profile is not None else frozenset()
    # Never what the visitor has (issue 22): the whole recent list, the cart, and the compact
    # per-visitor set of everything viewed, carted or bought (tailored.seen_items).
    excluded = {str(item) for item in exclude} | _had(profile)
    ranking = _model_ranking(profile, count * 2, now, excluded)
    if ranking is None:
        return Served(trending(count, now, exclude=down | excluded), POPULAR)
    ranked, version = ranking
    products = [product for product in by_ids(ranked, count * 2) if getattr(product, "in_stock", True)][:count]
    if len(products) < count:  # filters left too few: top up with what is trending
        shown = excluded | down | {str(product.pk) for product in products}
        products += trending(count - len(products), now, exclude=shown)
    # Topped up or not, the model chose the list's head: its version is what the CTR measures.
    return Served(products, model_source(version))


def _had(profile: Profile | None) -> set[str]:
    if profile is None:
        return set()
    return {item for item, _ in profile.recent_items} | set(profile.cart) | seen_items.get(profile.visitor_id)


def had_digest(profile: Profile | None) -> str:
    """A short digest of everything the visitor has (what `recommend_pages` leaves out): the
    page cache keys a page row by it, so a visitor is never served a row cached for someone who
    had not read what they have."""
    had = sorted(_had(profile))
    return hashlib.sha256(",".join(had).encode()).hexdigest()[:16] if had else "-"


def _model_ranking(profile: Profile | None, count: int, now: float | None, excluded: set[str]) -> tuple[list[str], str] | None:
    loaded = registry.load(RECOMMENDER)
    if loaded is None:
        return None
    try:
        ranked = loaded.artifact.recommend(
            profile.recent_items if profile is not None else (),
            count,
            now=time.time() if now is None else now,
            exclude=excluded,
            down_voted=profile.down_votes if profile is not None else (),
            preferences=profile.preferences if profile is not None else (),
            diversity=RECOMMENDATION_DIVERSITY,
            max_history=conf.get("RECOMMENDATION_MAX_HISTORY"),
            item_type=PRODUCT,  # the model also knows articles and other registered pages
        )
    except Exception as error:  # a model that cannot score must never break a page
        logger.warning("recommender %s failed, serving trending: %s", loaded.version, error)
        return None
    return [item for item, _ in ranked], loaded.version


def _pks(items: Iterable[object]) -> Sequence[int]:
    return [int(str(i)) for i in items if str(i).isdigit()]


# -- other page types (issue 22 item 6) ---------------------------------------------------------


def recommended_pages(
    profile: Profile | None, count: int, item_type: str, *, page: object = None, strategy: str = "recommended", now: float | None = None,
) -> list:
    """Live pages of a registered item type for this visitor; see `recommend_pages`."""
    return recommend_pages(profile, count, item_type, page=page, strategy=strategy, now=now).items


def recommend_pages(
    profile: Profile | None, count: int, item_type: str, *, page: object = None, strategy: str = "recommended", now: float | None = None,
) -> Served:
    """Live pages of a registered item type (tailored.ml.catalog.Recommendable) for this visitor,
    never `page` (the one being viewed). "recommended": the trained model scores the page being
    viewed with the visitor's history (the profile keeps products; the page is what says what they
    read now); "trending": the model's trending for the type; without a model, the newest pages.
    "recently_viewed" gives none: the profile's recent items are products."""
    from tailored.ml.catalog import recommendable

    entry = recommendable(item_type)
    if entry is None or count <= 0 or strategy == "recently_viewed":
        return Served([], RECENTLY_VIEWED if strategy == "recently_viewed" else NEWEST)
    current = str(page.pk) if getattr(page, "pk", None) is not None else None
    # Never the page being read, nor one already read (tailored.seen_items keeps the recommendable
    # pages a visitor viewed beside their products).
    excluded = ({current} if current else set()) | _had(profile)
    ranking = _page_ranking(profile, count * 2, item_type, current, excluded, strategy, now)
    model = apps.get_model(entry.model)
    if not ranking or not ranking[0]:  # no usable model, or one fitted before this type had pages
        newest = model.objects.live().exclude(pk__in=_pks(excluded)).order_by("-first_published_at", "-pk")
        return Served(list(newest[:count]), NEWEST)
    ranked, version = ranking
    found = model.objects.live().in_bulk(_pks(ranked))
    return Served([found[int(item)] for item in ranked if item.isdigit() and int(item) in found][:count], model_source(version))


def _page_ranking(
    profile: Profile | None, count: int, item_type: str, current: str | None, excluded: set[str], strategy: str, now: float | None,
) -> tuple[list[str], str] | None:
    loaded = registry.load(RECOMMENDER)
    if loaded is None:
        return None
    now = time.time() if now is None else now
    history: tuple[tuple[str, float], ...] = ()
    if strategy == "recommended":
        history = ((current, now),) if current else ()
        history += tuple(profile.recent_items) if profile is not None else ()
    try:
        ranked = loaded.artifact.recommend(
            history, count, now=now, exclude=excluded,
            down_voted=profile.down_votes if profile is not None else (),
            preferences=profile.preferences if profile is not None and strategy == "recommended" else (),
            diversity=RECOMMENDATION_DIVERSITY, max_history=conf.get("RECOMMENDATION_MAX_HISTORY"), item_type=item_type,
        )
    except Exception as error:  # a model that cannot score must never break a page
        logger.warning("recommender %s failed for %s pages: %s", loaded.version, item_type, error)
        return None
    return [item for item, _ in ranked], loaded.version
