"""The site's product model, named by `PERSONALIZATION["PRODUCT_MODEL"]` ("app_label.ModelName").

Tailored ships no product model: the product blocks (carousel, recommendations, onboarding
survey), the recommender's catalog and the GraphQL product queries read the site's own Wagtail
page model through this module. Without the setting those blocks are not offered and the
personalized message's product tokens show their fallbacks.

The protocol a product model follows (attributes read, all but the first two optional):
- a Wagtail `Page` subclass: `title`, `slug`, `live` and `url` come from Page;
- `category`: a foreign key to the page model that groups products (its `slug` and `title` name
  the category in segments, the survey and recommendations); `PERSONALIZATION["CATEGORY_MODEL"]`
  names that model when the field is missing or named otherwise;
- `price` (a number), `image` (a foreign key to a Wagtail image), `description` (text, for
  content-based recommendations), `tags` (a django-taggit manager), `in_stock` or `stock`
  (falsy: never recommended; missing: always in stock).
"""

from __future__ import annotations

from django.apps import apps
from django.db import models

from . import conf


def product_model_label() -> str | None:
    """The configured label, or None when the site has no product model."""
    return conf.get("PRODUCT_MODEL") or None


def category_model_label() -> str | None:
    """CATEGORY_MODEL, else the model the product's `category` field points at (needs the app
    registry), else None."""
    if conf.get("CATEGORY_MODEL"):
        return conf.get("CATEGORY_MODEL")
    model = product_model()
    if model is None:
        return None
    try:
        related = model._meta.get_field("category").related_model
    except Exception:  # noqa: BLE001 - no such field, or not a relation: no categories
        return None
    return related._meta.label if related is not None else None


def product_model() -> type[models.Model] | None:
    label = product_model_label()
    return apps.get_model(label) if label else None


def category_model() -> type[models.Model] | None:
    label = category_model_label()
    return apps.get_model(label) if label else None
