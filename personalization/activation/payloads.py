"""What a send carries (issue 20 item 3): the trigger, when and why it fired, and only the visitor
fields its destination needs (tailored.activation.destinations.PAYLOAD_FIELDS)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tailored import conf, products, seen_items
from tailored.core.types import Profile

from .models import KnownVisitor, Trigger, VisitorTraits

logger = logging.getLogger(__name__)

PRODUCT_TOKENS = 4  # products in each of recommended, last_viewed and cart


def build(
    trigger: Trigger, fields: frozenset[str], visitor_id: str, key: str, reason: Mapping[str, Any],
    profile: Profile, known: KnownVisitor | None, now: float,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "idempotency_key": key,
        "trigger": {"id": trigger.pk, "name": trigger.name, "kind": trigger.kind},
        "fired_at": datetime.fromtimestamp(now, tz=UTC).isoformat(),
        "reason": dict(reason),
    }
    if "visitor_id" in fields:
        payload["visitor_id"] = visitor_id
    if "user_id" in fields and known is not None and known.user_id:
        payload["user_id"] = known.user_id
    if "email" in fields and known is not None and known.marketing and known.email:
        payload["email"] = known.email
    if "traits" in fields:
        row = VisitorTraits.objects.filter(visitor_id=visitor_id).first()
        payload["traits"] = dict(row.values) if row is not None else {}
    if "last_viewed" in fields:
        payload["last_viewed"] = product_tokens(item for item, _ in profile.recent_items)
    if "cart" in fields:
        payload["cart"] = product_tokens(item for item, quantity in profile.cart.items() if quantity > 0)
    if "recommended" in fields:
        payload["recommended"] = product_tokens(recommended_items(profile, now))
    return payload


def product_tokens(items: Iterable[str]) -> list[dict[str, Any]]:
    """Live products as {id, title, url, price}, in the given order, at most PRODUCT_TOKENS."""
    model = products.product_model()
    wanted = list(dict.fromkeys(str(item) for item in items if str(item).isdigit()))
    if model is None or not wanted:
        return []
    found = model.objects.live().in_bulk([int(item) for item in wanted[: PRODUCT_TOKENS * 3]])
    tokens = []
    for item in wanted:
        product = found.get(int(item))
        if product is not None and getattr(product, "in_stock", True):
            tokens.append({"id": product.pk, "title": product.title, "url": product.full_url, "price": _price(product)})
    return tokens[:PRODUCT_TOKENS]


def _price(product: Any) -> float | None:
    price = getattr(product, "price", None)
    return float(price) if price is not None else None


def recommended_items(profile: Profile, now: float) -> list[str]:
    """The trained recommender's items for this visitor, never what they have (the page's own
    exclusions: recent items, cart, the seen set); [] when no model is trained."""
    from tailored.ml import registry
    from tailored.ml.training import RECOMMENDER

    loaded = registry.load(RECOMMENDER)
    if loaded is None:
        return []
    had = {item for item, _ in profile.recent_items} | set(profile.cart)
    if profile.visitor_id:
        had |= seen_items.get(profile.visitor_id)
    try:
        ranked = loaded.artifact.recommend(
            profile.recent_items, PRODUCT_TOKENS * 3, now=now, exclude=had, down_voted=profile.down_votes,
            preferences=profile.preferences, max_history=conf.get("RECOMMENDATION_MAX_HISTORY"),
        )
    except Exception as error:  # a model that cannot score leaves the token empty, never the send
        logger.warning("recommendations for an activation payload failed: %s", error)
        return []
    return [item for item, _ in ranked]
