"""The process-wide cache of compiled segment definitions.

Rules are compiled once and reused for every request. Edits in this process invalidate the
cache at once (signals); edits in other processes are picked up within
SEGMENT_REFRESH_SECONDS through a cheap signature query (row count and latest update).
"""

from __future__ import annotations

import logging
import threading
import time

from django.db.models import Count, Max

from tailored import conf
from tailored.core.rules import RuleError
from tailored.core.segments import SegmentDefinition, SegmentSet

from .models import Segment

logger = logging.getLogger(__name__)


class SegmentCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments = SegmentSet()
        self._windows: frozenset = frozenset()
        self._fields: frozenset[str] = frozenset()
        self._signature: tuple | None = None
        self._checked_at = float("-inf")

    def current(self) -> tuple[SegmentSet, frozenset]:
        """The enabled segments and the windowed counts their rules read."""
        now = time.monotonic()
        if now - self._checked_at < conf.get("SEGMENT_REFRESH_SECONDS"):
            return self._segments, self._windows
        with self._lock:
            signature = tuple(Segment.objects.aggregate(n=Count("id"), latest=Max("updated_at")).values())
            if signature != self._signature:
                self._segments = SegmentSet(_load_definitions())
                self._windows = self._segments.windows
                self._fields = self._segments.fields
                self._signature = signature
            self._checked_at = now
        return self._segments, self._windows

    def fields(self) -> frozenset[str]:
        """The field names the enabled rules read (facts that cost something are built only then)."""
        self.current()
        return self._fields

    def invalidate(self) -> None:
        self._checked_at = float("-inf")
        self._signature = None


def _load_definitions() -> tuple[SegmentDefinition, ...]:
    definitions = []
    for segment in Segment.objects.filter(enabled=True):
        try:
            definitions.append(SegmentDefinition(segment.slug, segment.compiled(), segment.priority))
        except RuleError as error:
            # Only reachable when a row was edited behind the model's back (save() validates).
            logger.warning("segment %s skipped: %s", segment.slug, error)
    return tuple(definitions)


segment_cache = SegmentCache()
