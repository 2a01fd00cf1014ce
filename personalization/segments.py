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

from personalization import conf
from personalization.core.rules import RuleError
from personalization.core.segments import SegmentDefinition

from .models import Segment

logger = logging.getLogger(__name__)


class SegmentCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._definitions: tuple[SegmentDefinition, ...] = ()
        self._signature: tuple | None = None
        self._checked_at = float("-inf")

    def current(self) -> tuple[SegmentDefinition, ...]:
        now = time.monotonic()
        if now - self._checked_at < conf.get("SEGMENT_REFRESH_SECONDS"):
            return self._definitions
        with self._lock:
            signature = tuple(Segment.objects.aggregate(n=Count("id"), latest=Max("updated_at")).values())
            if signature != self._signature:
                self._definitions = _load_definitions()
                self._signature = signature
            self._checked_at = now
        return self._definitions

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
