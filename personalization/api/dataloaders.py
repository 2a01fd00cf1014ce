"""Request-scoped loaders: the DataLoader pattern, synchronous (Django's ORM is).

A loader batches what one call asks for into one query and remembers what it loaded for the rest
of the request. Product rows, GraphQL list fields and SSR blocks all ask the same loaders, so:

- a row of any length costs a fixed number of queries (one for the products, one for their
  images' renditions), and a product shown in three rows is read once;
- segment lookups by slug (variant labels, the editors' segment list) cost one query per request.

`VisitorMiddleware` opens a scope per request (`request_scope`); code running outside any scope
(management commands, tests calling block methods directly) gets a fresh loader per call, which
behaves the same, only without the cross-call memory.

Models are named by string ("app.Model") so this module, at the bottom of the layering, never
imports the site's page models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.apps import apps
from django.db.models import Model, QuerySet, prefetch_related_objects


class ModelLoader:
    """Instances of one model by primary key, loaded through `queryset` (which decides what is
    joined or prefetched)."""

    def __init__(self, queryset: Callable[[], QuerySet]):
        self._queryset = queryset
        self._loaded: dict[int, Model | None] = {}
        self.queries = 0  # how many batches went to the database (tests and benchmarks read it)

    def load_many(self, pks: Iterable[int]) -> dict[int, Model]:
        """The instances of `pks` that exist (and the queryset admits), in one query for the ones
        not loaded yet."""
        wanted = list(dict.fromkeys(pks))
        missing = [pk for pk in wanted if pk not in self._loaded]
        if missing:
            found = self._queryset().in_bulk(missing)
            self.queries += 1
            for pk in missing:
                self._loaded[pk] = found.get(pk)
        return {pk: self._loaded[pk] for pk in wanted if self._loaded[pk] is not None}

    def prime(self, instances: Iterable[Model]) -> None:
        """Remember instances another query already loaded (rows found by category or tag)."""
        for instance in instances:
            self._loaded.setdefault(instance.pk, instance)


class RenditionLoader:
    """Every rendition of many images in one query: `image.get_rendition(...)` then finds the
    prefetched renditions instead of querying once per image."""

    def __init__(self) -> None:
        self._done: set[int] = set()
        self.queries = 0

    def prime(self, images: Iterable[Any]) -> None:
        fresh = [image for image in images if image is not None and image.pk not in self._done]
        fresh = [image for image in fresh if "renditions" not in getattr(image, "_prefetched_objects_cache", {})]
        if fresh:
            prefetch_related_objects(fresh, "renditions")
            self.queries += 1
        self._done.update(image.pk for image in fresh)


class SegmentLoader:
    """Segments by slug, all of them in one query the first time any is asked for."""

    def __init__(self) -> None:
        self._by_slug: dict[str, Any] | None = None
        self.queries = 0

    def load_many(self, slugs: Iterable[str]) -> dict[str, Any]:
        if self._by_slug is None:
            self._by_slug = {segment.slug: segment for segment in apps.get_model("tailored.Segment").objects.all()}
            self.queries += 1
        return {slug: self._by_slug[slug] for slug in slugs if slug in self._by_slug}

    def all(self) -> list[Any]:
        self.load_many(())
        return sorted(self._by_slug.values(), key=lambda s: (-s.priority, s.name))


class Loaders:
    """The loaders of one request."""

    def __init__(self) -> None:
        self._models: dict[str, ModelLoader] = {}
        self.renditions = RenditionLoader()
        self.segments = SegmentLoader()

    def model(self, label: str, queryset: Callable[[], QuerySet]) -> ModelLoader:
        """The loader of model `label` ("app.Model"); `queryset` is used the first time only."""
        if label not in self._models:
            self._models[label] = ModelLoader(queryset)
        return self._models[label]

    @property
    def queries(self) -> int:
        loaders = [*self._models.values(), self.renditions, self.segments]
        return sum(loader.queries for loader in loaders)


_current: ContextVar[Loaders | None] = ContextVar("tailored_loaders", default=None)


@contextmanager
def request_scope() -> Iterator[Loaders]:
    """Loaders shared by everything that runs inside (one request)."""
    loaders = Loaders()
    token = _current.set(loaders)
    try:
        yield loaders
    finally:
        _current.reset(token)


def current() -> Loaders:
    """This request's loaders, or fresh ones outside any request."""
    return _current.get() or Loaders()
