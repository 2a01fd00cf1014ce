"""CRM traits in (issue 20 item 4): declared attributes a site's CRM sends about a visitor
(loyalty tier, account type, lifetime orders), checked against their Trait definitions and kept
in two places: the VisitorTraits row (the record that export and erasure read) and the profile
store's copy, which rules read as `trait.<key>` in the same round trip as the profile.

Traits are the site's own data about its customers: they are stored whatever the visitor's
consent, but a rule sees them only where the profile is read, which needs personalization
consent (tailored.services). Only declared keys are accepted, every value is typed by its
Trait's kind, and a write with any bad value writes nothing.

The core (tailored.core.fields.TRAIT_FIELDS) learns the declarations from here: at once in this
process when a Trait is saved or deleted, and within a second elsewhere (a cheap signature
query, run only when a rule naming a trait is compiled or edited)."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Max
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from tailored import conf
from tailored.core import fields
from tailored.core.types import Visitor
from tailored.events.schema import LONE_SURROGATE

from .models import Trait, VisitorTraits

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 200  # a text or choice value; a CRM field longer than this is not a segment fact
MAX_NUMBER = 1e15  # beyond this a number is a mistake (an id, a timestamp in ms), not a trait
MAX_TRAITS_PER_WRITE = 100
VISITOR_ID = re.compile(r"^[0-9a-f]{32}\Z")
REFRESH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class TraitProblem:
    """One reason a write was refused: the key it concerns (None for the whole write) and why."""

    key: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "reason": self.reason}


class TraitError(ValueError):
    """Traits that cannot be stored; `problems` lists every one (nothing was written)."""

    def __init__(self, problems: Sequence[TraitProblem]):
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.key}: {p.reason}" if p.key else p.reason for p in self.problems))


# Declarations ---------------------------------------------------------------------------------


def declared_traits() -> dict[str, Trait]:
    """Every Trait row, by key (one query)."""
    return {trait.key: trait for trait in Trait.objects.all()}


_signature: list[Any] = [None, float("-inf")]  # [the Trait table's signature, when it was checked]


def refresh_declarations(force: bool = False) -> None:
    """Bring the core's TRAIT_FIELDS in step with the Trait rows if they changed; at most once a
    second unless forced. A database that cannot be read (none yet, or a test without one)
    leaves the declarations as they were: a rule naming a trait then says it is undeclared."""
    now = time.monotonic()
    if not force and now - _signature[1] < REFRESH_SECONDS:
        return
    _signature[1] = now
    try:
        signature = tuple(Trait.objects.aggregate(n=Count("id"), latest=Max("updated_at")).values())
        if force or signature != _signature[0]:
            # A key the admin would refuse (a row written by code) is left out, not the others.
            usable = [t for t in declared_traits().values() if fields.TRAIT_KEY.match(t.key) and t.kind in fields.TRAIT_KINDS]
            fields.declare_traits((t.key, t.kind, t.label, tuple(t.choices or ())) for t in usable)
            _signature[0] = signature
    except Exception as error:  # noqa: BLE001 - see the docstring
        logger.debug("trait declarations not refreshed: %s", error)


fields.set_trait_refresh(refresh_declarations)


@receiver(post_save, sender=Trait)
@receiver(post_delete, sender=Trait)
def _trait_changed(**kwargs) -> None:
    from tailored.segments import segment_cache

    refresh_declarations(force=True)
    segment_cache.invalidate()  # rules naming the trait compile again against its declaration


# Validation -----------------------------------------------------------------------------------


def validate_traits(values: object, declared: Mapping[str, Trait] | None = None) -> dict[str, Any]:
    """The values, checked against their declarations: every key declared, every value of its
    trait's kind (None removes a trait). Raises TraitError listing every problem."""
    if not isinstance(values, Mapping):
        raise TraitError([TraitProblem(None, f"traits must be an object of key: value, got {type(values).__name__}")])
    if len(values) > MAX_TRAITS_PER_WRITE:
        raise TraitError([TraitProblem(None, f"at most {MAX_TRAITS_PER_WRITE} traits in one write, got {len(values)}")])
    declared = declared_traits() if declared is None else declared
    checked: dict[str, Any] = {}
    problems: list[TraitProblem] = []
    for key, value in values.items():
        trait = declared.get(key) if isinstance(key, str) else None
        if trait is None:
            known = ", ".join(sorted(declared)) or "none yet"
            problems.append(TraitProblem(str(key), f"not a declared trait (declared: {known})"))
            continue
        try:
            checked[key] = None if value is None else typed_value(trait, value)
        except ValueError as error:
            problems.append(TraitProblem(key, str(error)))
    if problems:
        raise TraitError(problems)
    return checked


def typed_value(trait: Trait, value: object) -> Any:
    """`value` as the trait's kind stores it; ValueError says what was expected."""
    kind = trait.kind
    if kind == Trait.Kind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        # The magnitude first: math.isfinite raises OverflowError for an int too large for a float.
        if isinstance(value, int) and abs(value) > MAX_NUMBER:
            shown = repr(value) if abs(value) < 10**20 else "an integer of more than 20 digits"
            raise ValueError(f"expected a number from -{MAX_NUMBER:.0e} to {MAX_NUMBER:.0e}, got {shown}")
        if not math.isfinite(value):
            raise ValueError(f"expected a number, got {value!r}")
        if abs(value) > MAX_NUMBER:
            raise ValueError(f"expected a number from -{MAX_NUMBER:.0e} to {MAX_NUMBER:.0e}, got {value!r}")
        return value
    if kind == Trait.Kind.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty text, got {value!r}")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"expected at most {MAX_TEXT_CHARS} characters, got {len(value)}")
    # PostgreSQL cannot store NUL in text, and a lone surrogate is not UTF-8 (Redis, the database):
    # refused, in the event schema's words (tailored.events.schema.stored_event_problem).
    if "\x00" in value or not value.isascii() and LONE_SURROGATE.search(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    if kind == Trait.Kind.CHOICE and value not in (trait.choices or ()):
        raise ValueError(f"expected one of {', '.join(map(str, trait.choices or ()))}, got {value!r}")
    return value


# Writing --------------------------------------------------------------------------------------


def visitor_id_of(visitor_or_user: object) -> str:
    """The visitor id traits are kept under: a Visitor's id, an id string (32 hex characters), or
    a Django user's visitor id (tailored.services.user_visitor_id)."""
    from tailored.services import user_visitor_id

    if isinstance(visitor_or_user, Visitor):
        if visitor_or_user.id is None:
            raise TraitError([TraitProblem(None, "this visitor has no id (no consent yet): name the user or the visitor id instead")])
        return visitor_or_user.id
    if isinstance(visitor_or_user, str):
        if not VISITOR_ID.match(visitor_or_user):
            raise TraitError([TraitProblem(None, f"a visitor id is 32 lower-case hexadecimal characters, got {visitor_or_user!r}")])
        return visitor_or_user
    if getattr(visitor_or_user, "is_authenticated", False) and getattr(visitor_or_user, "pk", None) is not None:
        return user_visitor_id(visitor_or_user.pk)
    raise TraitError([TraitProblem(None, f"expected a Visitor, a visitor id or a saved user, got {type(visitor_or_user).__name__}")])


@dataclass(frozen=True, slots=True)
class WriteCounts:
    visitors: int = 0
    traits_set: int = 0
    traits_removed: int = 0

    def as_json(self) -> dict[str, int]:
        return {"visitors": self.visitors, "traits_set": self.traits_set, "traits_removed": self.traits_removed}


def set_traits(visitor_or_user: object, values: Mapping[str, Any]) -> dict[str, Any]:
    """Set (or with None, remove) declared traits of one visitor or user; returns all their
    traits now. Raises TraitError, having written nothing, when any value is invalid."""
    visitor_id = visitor_id_of(visitor_or_user)
    write_traits([(visitor_id, validate_traits(values))])
    row = VisitorTraits.objects.filter(visitor_id=visitor_id).first()
    return dict(row.values) if row else {}


def write_traits(checked: Iterable[tuple[str, Mapping[str, Any]]]) -> WriteCounts:
    """Write validated traits (from `validate_traits`) of many visitors: the rows (a few queries
    for the whole batch) and the store's copies (one round trip), in one transaction that a
    failing store write rolls back (the error is raised)."""
    merged: dict[str, dict[str, Any]] = {}
    for visitor_id, values in checked:  # several records for one visitor apply in order
        merged.setdefault(visitor_id, {}).update(values)
    if not merged:
        return WriteCounts()
    set_count = sum(1 for values in merged.values() for v in values.values() if v is not None)
    removed = sum(1 for values in merged.values() for v in values.values() if v is None)
    with transaction.atomic():
        rows = {row.visitor_id: row for row in VisitorTraits.objects.select_for_update().filter(visitor_id__in=list(merged))}
        now_held = {
            visitor_id: {key: value for key, value in {**(rows[visitor_id].values if visitor_id in rows else {}), **values}.items() if value is not None}
            for visitor_id, values in merged.items()
        }
        _save_rows(rows, now_held)
        conf.get_profile_store().set_traits_many(now_held)
    return WriteCounts(len(merged), set_count, removed)


def _save_rows(rows: dict[str, VisitorTraits], held: dict[str, dict[str, Any]]) -> None:
    """Create, update or (when the last trait went) delete each visitor's row, in bulk."""
    stamp = timezone.now()
    changed = []
    for visitor_id, values in held.items():
        if visitor_id in rows and values:
            rows[visitor_id].values, rows[visitor_id].updated_at = values, stamp
            changed.append(rows[visitor_id])
    VisitorTraits.objects.bulk_update(changed, ["values", "updated_at"], batch_size=500)
    VisitorTraits.objects.bulk_create(
        [VisitorTraits(visitor_id=v, values=values) for v, values in held.items() if v not in rows and values], batch_size=500
    )
    emptied = [visitor_id for visitor_id, values in held.items() if visitor_id in rows and not values]
    if emptied:  # no empty row stays behind
        VisitorTraits.objects.filter(visitor_id__in=emptied).delete()


def traits_of(visitor_id: str) -> dict[str, Any]:
    """The visitor's stored traits (the record), for export."""
    row = VisitorTraits.objects.filter(visitor_id=visitor_id).first()
    return dict(row.values) if row else {}


def forget(visitor_id: str) -> int:
    """Delete the visitor's traits row (the store's copy goes with the profile's keys)."""
    deleted, _ = VisitorTraits.objects.filter(visitor_id=visitor_id).delete()
    return deleted
