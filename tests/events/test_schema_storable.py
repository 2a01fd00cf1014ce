"""Validation skips the worker's storage check (`stored_event_problem`) for event types whose
schema already guarantees it (`STORABLE_BY_SCHEMA`). Whatever such a type accepts, the worker
must be able to store; a registered type with looser column fields keeps the check."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailored.events import schema
from tailored.events.schema import (
    EVENT_TYPES,
    STORABLE_BY_SCHEMA,
    FieldSpec,
    register_event_type,
    stored_event_problem,
    validate_event,
)

NOW = time.time()
BUILT_IN = sorted(schema.BUILT_IN_TYPES)

texts = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=()), max_size=80)
values = st.one_of(texts, st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(0, 10), max_size=3))


def value_for(spec: FieldSpec):
    if spec.choices:
        return st.one_of(st.sampled_from(spec.choices), values)
    if spec.pattern is not None:
        return st.one_of(st.from_regex(spec.pattern, fullmatch=True), texts)
    if spec.kind is int:
        return st.one_of(st.integers(-5, 2**64), values)
    return values


@st.composite
def events_of(draw, kind: str):
    item = {"type": kind, "id": draw(st.from_regex(schema.EVENT_ID, fullmatch=True)), "ts": int(NOW * 1000)}
    for name, spec in EVENT_TYPES[kind].items():
        if name in item:
            continue
        if spec.required or draw(st.booleans()):
            item[name] = draw(value_for(spec))
    return item


def test_every_built_in_type_is_storable_by_its_schema():
    assert set(BUILT_IN) <= STORABLE_BY_SCHEMA


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(BUILT_IN).flatmap(events_of))
def test_what_a_built_in_type_accepts_the_worker_can_store(item):
    result = validate_event(item, 0, NOW)
    if isinstance(result, schema.Event):
        assert stored_event_problem(result) is None


@pytest.fixture
def loose_type():
    register_event_type("loose_test", {"category": FieldSpec(str), "note": FieldSpec(str)})
    yield "loose_test"
    EVENT_TYPES.pop("loose_test", None)
    STORABLE_BY_SCHEMA.discard("loose_test")


def test_a_type_with_a_looser_column_field_keeps_the_storage_check(loose_type):
    assert loose_type not in STORABLE_BY_SCHEMA
    rejected = validate_event({"type": loose_type, "id": "a1", "ts": int(NOW * 1000), "category": "x" * 65}, 0, NOW)
    assert isinstance(rejected, schema.Rejection) and rejected.field == "category"
    assert "64 characters" in rejected.reason


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(BUILT_IN).flatmap(events_of), st.randoms(use_true_random=False))
def test_the_fast_path_answers_as_the_checks_in_order_do(item, rng):
    """validate_event's one pass over the fields an event has gives what every check in the
    schema's order gives: the same event, or the same field and reason, whatever the order."""
    names = list(item)
    rng.shuffle(names)
    shuffled = {name: item[name] for name in names}
    if rng.random() < 0.2:
        shuffled.pop(rng.choice(names))  # a required field may go missing
    if rng.random() < 0.2:
        shuffled["surprise"] = 1  # an unexpected field
    if shuffled.get("type") != item["type"]:
        return  # no type: refused before either path
    expected = schema.checked_in_order(dict(shuffled), EVENT_TYPES[item["type"]], item["type"], 0, NOW)
    assert validate_event(dict(shuffled), 0, NOW) == expected
