"""trackEvents: the same validation and storage as POST /api/events, with per-event errors."""

from __future__ import annotations

import math
import time

import graphene
from graphene.types.generic import GenericScalar

from graphql import (
    FloatValueNode,
    GraphQLError,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    ValueNode,
    VariableNode,
)
from tailored import conf, redis_guard
from tailored.events.json_body import MAX_INT_DIGITS
from tailored.events.schema import validate_events
from tailored.services import (
    UNTRUSTED_PURCHASE,
    UNTRUSTED_PURCHASE_MESSAGE,
    record_events,
    resolve_visitor,
    untrusted_purchases,
)


class TrackEventsError(graphene.ObjectType):
    """Why an event (or the whole call) was refused."""

    code = graphene.String(required=True, description="invalid_event, consent_required, not_tracked, batch_too_large, rate_limited, unavailable (nothing stored: retry later) or untrusted_purchase (purchases come from the server only; nothing stored).")
    message = graphene.String(required=True, description="What is wrong, for a developer.")
    index = graphene.Int(description="The position of the refused event in `events`, when one event is at fault.")
    field = graphene.String(description="The event field at fault, when there is one.")


class TrackEvents(graphene.Mutation):
    """Events are objects as POST /api/events takes them: type, id, ts (epoch ms) and the type's fields."""

    class Arguments:
        events = graphene.List(graphene.NonNull(GenericScalar), required=True, description="At most 100 events.")

    accepted = graphene.Int(required=True, description="Valid events in the call.")
    stored = graphene.Int(required=True, description="Events stored now (not seen before).")
    duplicates = graphene.Int(required=True, description="Events whose id was already recorded.")
    errors = graphene.List(graphene.NonNull(TrackEventsError), required=True, description="Refused events, or why nothing was stored.")

    @staticmethod
    def mutate(root, info, events):
        events = _as_written(info, events)
        visitor = resolve_visitor(info.context)
        refusal = _refusal(visitor, len(events))
        if refusal:
            return TrackEvents(accepted=0, stored=0, duplicates=0, errors=[refusal])
        if untrusted := untrusted_purchases(info.context, events):  # refused whole, as POST /api/events does
            errors = [TrackEventsError(code=UNTRUSTED_PURCHASE, message=UNTRUSTED_PURCHASE_MESSAGE, index=i, field="type") for i in untrusted]
            return TrackEvents(accepted=0, stored=0, duplicates=0, errors=errors)
        valid, rejections = validate_events(list(events), time.time())
        errors = [TrackEventsError(code="invalid_event", message=r.reason, index=r.index, field=r.field) for r in rejections]
        try:
            result = record_events(visitor, valid)
        except redis_guard.OUTAGE:  # typed and without internals; the client keeps the batch
            errors.append(TrackEventsError(code="unavailable", message="temporarily unavailable; nothing was stored, retry later"))
            return TrackEvents(accepted=len(valid), stored=0, duplicates=0, errors=errors)
        if result.rate_limited:
            errors.append(TrackEventsError(code="rate_limited", message="too many events; retry in a minute"))
        return TrackEvents(accepted=len(valid), stored=len(result.stored), duplicates=result.duplicates, errors=errors)


def _as_written(info, events: list) -> list:
    """The events as the document wrote them, when it wrote them inline rather than in a variable.

    graphene's GenericScalar reads an integer literal outside 32 bits as null, so an inline
    event lost its `ts` (epoch ms) and was refused as missing it. The schema has one scalar of
    that name (a subclass registered under it would be ignored: `Visitor.explain` registers
    graphene's first), so the literal is read again here, as the same JSON in a variable reads."""
    argument = next((node.value for node in info.field_nodes[0].arguments or () if node.name.value == "events"), None)
    if argument is None or isinstance(argument, VariableNode):
        return events
    values = argument.values if isinstance(argument, ListValueNode) else (argument,)  # one value is a list of one
    return [_literal(value, info.variable_values) for value in values]


def _literal(node: ValueNode, variables: dict | None) -> object:
    """A GenericScalar literal as tailored.events.json_body reads the same JSON: integers kept
    whole up to MAX_INT_DIGITS digits, and that many more digits or a float too large to
    represent refused (a GraphQLError: nothing is stored)."""
    if isinstance(node, IntValueNode):
        digits = len(node.value.lstrip("-"))
        if digits > MAX_INT_DIGITS:
            raise GraphQLError(f"an integer has {digits} digits; the limit is {MAX_INT_DIGITS}")
        return int(node.value)
    if isinstance(node, FloatValueNode):
        value = float(node.value)
        if not math.isfinite(value):
            raise GraphQLError(f"the number {node.value[:40]} is too large to represent")
        return value
    if isinstance(node, ListValueNode):
        return [_literal(value, variables) for value in node.values]
    if isinstance(node, ObjectValueNode):
        return {field.name.value: _literal(field.value, variables) for field in node.fields}
    if isinstance(node, VariableNode):  # a variable inside the literal: its value
        return (variables or {}).get(node.name.value)
    return GenericScalar.parse_literal(node)  # strings and booleans; null and enum values are None


def _refusal(visitor, count: int) -> TrackEventsError | None:
    if visitor.context.device == "bot":
        return TrackEventsError(code="not_tracked", message="automated clients are not tracked")
    if visitor.id is None:
        return TrackEventsError(code="consent_required", message="no events are stored without consent")
    limit = conf.get("MAX_BATCH_EVENTS")
    if count > limit:
        return TrackEventsError(code="batch_too_large", message=f"{count} events; the limit is {limit}")
    return None
