"""What each visitor already has: the ids of items they viewed, added to their cart or bought,
and of the pages of registered recommendable types (articles, landing pages) they read, kept so
recommendations never offer them again (issue 22, items 1 and 6).

The profile's recent items hold only the last 50 views and its cart only what is in it now, so a
long history or an old purchase slipped through. This is a compact per-visitor set beside the
profile: a Redis sorted set `tl:v1:{visitor}:had` (member: item id, score: last time seen), or a
dictionary beside the memory store. It keeps the newest SEEN_ITEMS_CAP ids (default 1,000; a
visitor past that has the oldest ones forgotten, and the recommender still excludes everything in
the history it is given) and expires with the profile's retention.

A page view names its page by the last of the ids tracker.js sends (`pages`, "4 12 19": the
sections it is in, then the page); it is kept when that page is of a type registered with
`register_tailored_recommendable` (asked of the database once per page id per process: a page's
type never changes). Product and page ids are both page primary keys, so they share the set.

Filled by the stream worker as it stores events (personalization consent only; nothing is
backfilled from events stored before, whose rows do not say which consent they came with); read
once per recommendation request (one Redis ZRANGE); erased with the visitor. Every Redis touch goes through the caller's client and never raises into a page.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from tailored import conf

logger = logging.getLogger(__name__)

DEFAULT_CAP = 1000
ITEM_EVENTS = frozenset({"page_view", "add_to_cart", "purchase"})
_memory: weakref.WeakKeyDictionary[Any, dict[str, dict[str, float]]] = weakref.WeakKeyDictionary()
# Page id -> whether it is a page of a registered recommendable type, as this process learnt it.
# Bounded: a long-lived worker forgets everything past this many and asks again.
_page_answers: dict[str, bool] = {}
PAGE_ANSWERS_MAX = 100_000


def key(visitor_id: str) -> str:
    """Shares the profile's hash tag, so it lives on the visitor's Redis Cluster slot."""
    return f"tl:v1:{{{visitor_id}}}:had"


def cap() -> int:
    try:
        return int(conf.get("SEEN_ITEMS_CAP"))
    except (KeyError, TypeError, ValueError):
        return DEFAULT_CAP


def items_of(event_type: str, item: str | None, attrs: Mapping[str, Any] | None) -> list[str]:
    """The item ids an event says the visitor has: a viewed or carted product, every line of a
    purchase (attrs["items"]: ids or mappings with `product_id`/`id`)."""
    if event_type not in ITEM_EVENTS:
        return []
    if event_type == "purchase" and isinstance(attrs, Mapping) and attrs.get("items"):
        lines = [entry.get("product_id", entry.get("id")) if isinstance(entry, Mapping) else entry for entry in attrs["items"]]
        return [str(line) for line in lines if line is not None and not isinstance(line, bool) and str(line)]
    return [str(item)] if item else []


def viewed_page(event_type: str, item: str | None, attrs: Mapping[str, Any] | None) -> str | None:
    """The page a page view without a product names: the last id of attrs["pages"]."""
    if event_type != "page_view" or item or not isinstance(attrs, Mapping):
        return None
    pages = attrs.get("pages")
    ids = pages.split() if isinstance(pages, str) else []
    return ids[-1] if ids and ids[-1].isdigit() else None


def recommendable_pages(candidates: Collection[str]) -> set[str]:
    """Those of `candidates` (page ids) that are pages of a registered recommendable type. The
    rest (home, category and other pages) are never recommended, so never kept. When the
    database cannot answer, none (logged): losing a refinement must not stop ingestion."""
    if len(_page_answers) > PAGE_ANSWERS_MAX:
        _page_answers.clear()
    unknown = {page for page in candidates if page not in _page_answers}
    if unknown:
        try:
            from tailored.ml.catalog import registered_page_ids

            found = registered_page_ids(unknown)
        except Exception as error:
            logger.warning("could not tell which of %d viewed pages are recommendable: %s: %s", len(unknown), type(error).__name__, error)
            return {page for page in candidates if _page_answers.get(page)}
        _page_answers.update((page, page in found) for page in unknown)
    return {page for page in candidates if _page_answers.get(page)}


def forget_page_types() -> None:
    """A page was saved or deleted in this process: ask again (test databases reuse ids)."""
    _page_answers.clear()


def add(visitors: Mapping[str, Mapping[str, float]], store: Any | None = None, client: Any | None = None) -> int:
    """Record {visitor: {item: ts}} in the store's Redis (or `client`, the stream worker's), else
    beside the memory store; returns how many visitors were written. Never raises."""
    visitors = {visitor: items for visitor, items in visitors.items() if items}
    if not visitors:
        return 0
    if client is None:
        store = conf.get_profile_store() if store is None else store
        client = getattr(store, "client", None)
    limit = cap()
    try:
        if client is None:
            _add_memory(store, visitors, limit)
        else:
            _add_redis(client, visitors, limit, int(conf.get("RETENTION_DAYS") * 86400))
    except Exception as error:  # a refinement: losing it must not stop ingestion or training
        logger.warning("could not record seen items of %d visitors: %s: %s", len(visitors), type(error).__name__, error)
        return 0
    return len(visitors)


def _add_redis(client: Any, visitors: Mapping[str, Mapping[str, float]], limit: int, ttl: int) -> None:
    pipe = client.pipeline(transaction=False)
    for visitor, items in visitors.items():
        name = key(visitor)
        pipe.zadd(name, dict(items), gt=True)  # adds new ids; a later time moves one up, never down
        pipe.zremrangebyrank(name, 0, -limit - 1)  # keep the newest `limit`
        pipe.expire(name, ttl)
    pipe.execute()


def _add_memory(store: Any, visitors: Mapping[str, Mapping[str, float]], limit: int) -> None:
    table = _memory.setdefault(store, {})
    for visitor, items in visitors.items():
        had = table.setdefault(visitor, {})
        for item, ts in items.items():
            had[item] = max(ts, had.get(item, ts))
        if len(had) > limit:
            table[visitor] = dict(sorted(had.items(), key=lambda entry: entry[1])[-limit:])


def get(visitor_id: str | None, store: Any | None = None) -> frozenset[str]:
    """The visitor's item ids (empty without an id, or when the store cannot answer)."""
    if not visitor_id:
        return frozenset()
    store = conf.get_profile_store() if store is None else store
    client = getattr(store, "client", None)
    try:
        if client is None:
            return frozenset(_memory.get(store, {}).get(visitor_id, ()))
        return frozenset(str(member) for member in client.zrange(key(visitor_id), 0, -1))
    except Exception as error:
        logger.warning("could not read seen items: %s: %s", type(error).__name__, error)
        return frozenset()


def history(visitor_id: str, store: Any | None = None) -> list[dict[str, Any]]:
    """For an export: the visitor's item ids with when each was last seen (epoch seconds), oldest
    first. Unlike `get`, a store that cannot answer raises: an export must not leave them out."""
    store = conf.get_profile_store() if store is None else store
    client = getattr(store, "client", None)
    if client is None:
        had = sorted(_memory.get(store, {}).get(visitor_id, {}).items(), key=lambda entry: entry[1])
    else:
        had = client.zrange(key(visitor_id), 0, -1, withscores=True)
    return [{"item": str(item), "last_seen": float(ts)} for item, ts in had]


def forget(visitor_id: str, store: Any | None = None) -> None:
    """Erasure: the visitor's set goes."""
    store = conf.get_profile_store() if store is None else store
    client = getattr(store, "client", None)
    if client is None:
        _memory.get(store, {}).pop(visitor_id, None)
    else:
        client.delete(key(visitor_id))


def from_entries(entries: Iterable[Any]) -> dict[str, dict[str, float]]:
    """{visitor: {item: last ts}} from the stream worker's decoded entries; analytics-only
    entries (no personalization consent) are never acted on for the visitor alone."""
    rows = (
        (entry.visitor_id, event.type, event.item, event.ts, event.attrs)
        for entry in entries if not entry.analytics_only for event in entry.events
    )
    return from_rows(rows)


def from_rows(rows: Iterable[tuple[str, str, str | None, float, Mapping[str, Any] | None]]) -> dict[str, dict[str, float]]:
    """{visitor: {item: last ts}} from (visitor, type, item, ts, attrs) rows: the products they
    viewed, carted or bought, and the recommendable pages they read."""
    found: dict[str, dict[str, float]] = {}
    pages: dict[str, dict[str, float]] = {}
    for visitor, event_type, item, ts, attrs in rows:
        for had in items_of(event_type, item, attrs):
            _note(found, visitor, had, float(ts))
        page = viewed_page(event_type, item, attrs)
        if page is not None:
            _note(pages, visitor, page, float(ts))
    kept = recommendable_pages({page for read in pages.values() for page in read}) if pages else set()
    for visitor, read in pages.items():
        for page, ts in read.items():
            if page in kept:
                _note(found, visitor, page, ts)
    return found


def _note(found: dict[str, dict[str, float]], visitor: str, item: str, ts: float) -> None:
    items = found.setdefault(visitor, {})
    items[item] = max(ts, items.get(item, ts))


def fold(source_id: str, target_id: str, store: Any | None = None) -> None:
    """On login: the anonymous id's items (with their times) join the user's; the anonymous
    set is erased with the rest of that id (services.link_login)."""
    store = conf.get_profile_store() if store is None else store
    add({target_id: {seen["item"]: seen["last_seen"] for seen in history(source_id, store)}}, store=store)
