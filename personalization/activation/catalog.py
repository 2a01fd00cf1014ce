"""Products back in stock or cheaper (issue 20 item 1), for the visitors who viewed them.

When a live product is saved with a price lower than before, or back in stock after being out
(`in_stock`, else `stock` > 0), the change goes on the Redis list `tl:v1:act-catalog` after the
transaction commits; the stream workers take it from there (`catalog_turn`) and fire each
back-in-stock or price-drop trigger for the known visitors who viewed the product within the
trigger's `viewed_within_days`. Draft revisions change nothing here: Wagtail saves only the
revision then, not the product's fields.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from django.db import transaction
from django.db.models.signals import post_save, pre_save

from tailored import conf, products
from tailored.core import activation as core
from tailored.models import Event

from . import triggers

logger = logging.getLogger(__name__)

CATALOG_KEY = "tl:v1:act-catalog"
# One worker at a time handles the list (taking changes off its head); others skip the turn.
CATALOG_LOCK_KEY = "tl:v1:act-catalog:lock"
CATALOG_LOCK_SECONDS = 120
CHANGES_PER_TURN = 10
VISITORS_PER_CHANGE = 10_000
WATCHED_FIELDS = frozenset({"price", "in_stock", "stock", "live"})


def product_state(product: Any) -> dict[str, Any]:
    if hasattr(product, "in_stock"):
        in_stock = bool(product.in_stock)
    else:
        stock = getattr(product, "stock", None)
        in_stock = True if stock is None else bool(stock and stock > 0)
    price = getattr(product, "price", None)
    return {"in_stock": in_stock, "price": float(price) if price is not None else None}


def _before_save(sender, instance, update_fields=None, **kwargs) -> None:
    if instance.pk is None or (update_fields is not None and not WATCHED_FIELDS & set(update_fields)):
        return
    old = sender.objects.filter(pk=instance.pk).first()
    instance._tailored_catalog_before = product_state(old) if old is not None and old.live else None


def _after_save(sender, instance, update_fields=None, **kwargs) -> None:
    before = getattr(instance, "_tailored_catalog_before", None)
    instance._tailored_catalog_before = None
    if before is None or not instance.live:
        return
    after = product_state(instance)
    changes = [kind for kind in core.CATALOG_KINDS if core.catalog_change(kind, before, after)]
    for kind in changes:
        change = {"kind": kind, "product": instance.pk, "before": before, "after": after, "at": time.time()}
        transaction.on_commit(lambda change=change: record_change(change))


def record_change(change: dict[str, Any]) -> None:
    client = getattr(conf.get_profile_store(), "client", None)
    if client is None:
        return  # the memory store has no workers: nothing would read the change
    try:
        client.rpush(CATALOG_KEY, json.dumps(change))
    except redis.RedisError as error:  # saving a product never fails for activation's sake
        logger.warning("catalog change of product %s not recorded for triggers: %s", change["product"], error)


def connect() -> None:
    """Watch the site's product model (PRODUCT_MODEL), if it has one; called from AppConfig.ready."""
    model = products.product_model()
    if model is None:
        return
    pre_save.connect(_before_save, sender=model, dispatch_uid="tailored-catalog-before")
    post_save.connect(_after_save, sender=model, dispatch_uid="tailored-catalog-after")


def catalog_turn(client, now: float | None = None) -> int:
    """Fire the catalog triggers of the waiting changes; returns the sends queued. A change is
    removed only once handled: a worker that dies repeats it, and the sends' keys stop doubles."""
    now = time.time() if now is None else now
    if not client.llen(CATALOG_KEY) or not client.set(CATALOG_LOCK_KEY, "1", nx=True, ex=CATALOG_LOCK_SECONDS):
        return 0
    try:
        return _handle_changes(client, now)
    finally:
        client.delete(CATALOG_LOCK_KEY)


def _handle_changes(client, now: float) -> int:
    raw = client.lrange(CATALOG_KEY, 0, CHANGES_PER_TURN - 1)
    loaded = [item for item in triggers.trigger_cache.current() if item.spec.kind in core.CATALOG_KINDS]
    fired = 0
    for text in raw:
        try:
            change = json.loads(text)
        except ValueError:
            logger.error("unreadable catalog change dropped: %r", text[:200])
            continue
        for trigger in (item for item in loaded if item.spec.kind == change.get("kind")):
            fired += fire_for_viewers(trigger, change, now)
    client.ltrim(CATALOG_KEY, len(raw), -1)
    return fired


def fire_for_viewers(loaded: triggers.Loaded, change: dict[str, Any], now: float) -> int:
    days = float(loaded.spec.params["viewed_within_days"])
    since = datetime.fromtimestamp(now, tz=UTC) - timedelta(days=days)
    viewers = (
        Event.objects.filter(type="page_view", item=str(change["product"]), ts__gte=since)
        .values_list("visitor_id", flat=True).distinct()[:VISITORS_PER_CHANGE]
    )
    known = triggers.marketing_visitors(set(viewers))
    if not known:
        return 0
    profiles = conf.get_profile_store().get_many(list(known), now, loaded.windows)
    local = triggers.site_time(now)
    reason = {"product": change["product"], "before": change["before"], "after": change["after"]}
    fired = 0
    for visitor_id, profile in profiles.items():
        context = triggers.last_known_context(profile, local)
        cause = f"{change['kind']}:{change['product']}:{change['at']:.3f}"
        fired += triggers.fire(loaded, visitor_id, profile, context, known[visitor_id], cause, reason, now)
    return fired
