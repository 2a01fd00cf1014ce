"""What the recommender knows about an item, and the loader for the site's catalog (its PRODUCT_MODEL)."""

from __future__ import annotations

from dataclasses import dataclass


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
