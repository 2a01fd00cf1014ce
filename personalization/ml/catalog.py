"""What the recommender knows about an item, and the loader for the site's catalog: its
PRODUCT_MODEL, plus any page type the site registers with the `register_tailored_recommendable`
hook (issue 22 item 6):

    # myapp/wagtail_hooks.py
    from wagtail import hooks
    from tailored.ml.catalog import Recommendable

    @hooks.register("register_tailored_recommendable")
    def articles():
        return Recommendable("article", "blog.ArticlePage", text_fields=("intro", "body"))

Its pages are then trained on (their page views, read from the page ids tracker.js sends), and
recommended where a recommendation block or the GraphQL `recommendedPages` query asks for that
item type. Products keep their own loader and fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PRODUCT = "product"  # the item type of the site's PRODUCT_MODEL pages


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One recommendable item. `id` is the string the events carry (a product page pk)."""

    id: str
    title: str
    category: str  # category slug
    description: str = ""
    tags: tuple[str, ...] = ()
    price: float = 0.0
    in_stock: bool = True
    item_type: str = PRODUCT  # "product", or a registered page type's name (tailored.ml.recommendables)


@dataclass(frozen=True)
class Recommendable:
    """A page type the recommender may recommend. `item_type` names it in blocks and GraphQL;
    `text_fields` are the page's fields the content model reads (text, rich text or a
    StreamField: their words); `category_field` a foreign key whose `slug` is the category."""

    item_type: str
    model: str  # "app_label.ModelName", a Wagtail Page subclass
    text_fields: tuple[str, ...] = ()
    category_field: str | None = "category"
    label: str = ""

    @property
    def display_name(self) -> str:
        return self.label or self.item_type.replace("_", " ").capitalize() + "s"


def registered_recommendables() -> list[Recommendable]:
    """Every page type registered with the `register_tailored_recommendable` hook (the product
    model is not among them: it is always the "product" type). Later registrations of an item
    type replace earlier ones."""
    from wagtail import hooks

    found: dict[str, Recommendable] = {}
    for hook in hooks.get_hooks("register_tailored_recommendable"):
        result = hook()
        for entry in result if isinstance(result, list | tuple) else [result]:
            if isinstance(entry, Recommendable) and entry.item_type != PRODUCT:
                found[entry.item_type] = entry
    return list(found.values())


def item_type_choices() -> list[tuple[str, str]]:
    """(item type, label) for the block's item type field: products first."""
    return [(PRODUCT, "Products"), *((entry.item_type, entry.display_name) for entry in registered_recommendables())]


def recommendable(item_type: str) -> Recommendable | None:
    return next((entry for entry in registered_recommendables() if entry.item_type == item_type), None)


def registered_page_ids(candidates: Iterable[str]) -> set[str]:
    """Those of `candidates` (page ids as strings) that are pages of a registered recommendable
    type, live or not: one query per registered type, none without candidates or registrations."""
    from django.apps import apps

    pks = sorted({int(candidate) for candidate in candidates if str(candidate).isdigit()})
    found: set[str] = set()
    for entry in registered_recommendables() if pks else ():
        model = apps.get_model(entry.model)
        found.update(str(pk) for pk in model.objects.filter(pk__in=pks).values_list("pk", flat=True))
    return found


def site_catalog(live_only: bool = True) -> list[CatalogItem]:
    """The products (demo_catalog) and every registered page type's live pages."""
    items = demo_catalog(live_only)
    for entry in registered_recommendables():
        items += pages_catalog(entry, live_only)
    return items


def pages_catalog(entry: Recommendable, live_only: bool = True) -> list[CatalogItem]:
    from django.apps import apps

    model = apps.get_model(entry.model)
    pages = model.objects.live() if live_only else model.objects.all()
    if entry.category_field:
        pages = pages.select_related(entry.category_field)
    return [_page_item(page, entry) for page in pages.order_by("pk")]


def _page_item(page, entry: Recommendable) -> CatalogItem:
    category = getattr(page, entry.category_field, None) if entry.category_field else None
    return CatalogItem(
        id=str(page.pk),
        title=page.title,
        category=getattr(category, "slug", "") or "",
        description=" ".join(_words(getattr(page, name, "")) for name in entry.text_fields).strip(),
        item_type=entry.item_type,
    )


def _words(value) -> str:
    """The text of a field: a string, rich text (tags stripped) or a StreamField's blocks."""
    from django.utils.html import strip_tags

    if value is None:
        return ""
    if isinstance(value, str):
        return strip_tags(value)
    blocks = getattr(value, "raw_data", None)
    if blocks is not None:
        return " ".join(_texts(blocks))
    return strip_tags(str(value))


def _texts(raw) -> Iterable[str]:
    """Every string in a StreamField's raw data (block types and ids left out)."""
    from django.utils.html import strip_tags

    if isinstance(raw, str):
        yield strip_tags(raw)
    elif isinstance(raw, dict):
        for key, value in raw.items():
            if key not in ("type", "id"):
                yield from _texts(value)
    elif isinstance(raw, list | tuple) or hasattr(raw, "__iter__"):
        for value in raw:
            yield from _texts(value)


def demo_catalog(live_only: bool = True, model_label: str | None = None) -> list[CatalogItem]:
    """The site's products as catalog items, in pk order (needs Django set up).

    The product model is looked up by its label, so tailored.ml imports no page model. Products have no stock field: every live product is
    in stock; a product model with an `in_stock` or `stock` attribute is honoured.
    """
    from django.apps import apps

    from tailored.products import product_model_label

    label = model_label or product_model_label()
    if label is None:
        return []  # the site has no PRODUCT_MODEL: nothing to recommend
    model = apps.get_model(label)
    products = model.objects.live() if live_only else model.objects.all()
    products = products.select_related("category").prefetch_related("tags").order_by("pk")
    return [_as_catalog_item(product) for product in products]


def _as_catalog_item(product) -> CatalogItem:
    stock = getattr(product, "in_stock", getattr(product, "stock", None))
    category = getattr(product, "category", None)
    return CatalogItem(
        id=str(product.pk),
        title=product.title,
        category=getattr(category, "slug", "") or "",
        description=getattr(product, "description", "") or "",
        tags=tuple(sorted(tag.name for tag in product.tags.all())),
        price=float(getattr(product, "price", 0) or 0),
        in_stock=True if stock is None else bool(stock),
    )
