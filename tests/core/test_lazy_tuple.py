"""LazyTuple (issue 21 item 7): a profile's recent items and session starts, parsed only when read,
behave everywhere as the tuple they stand for."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

from tailored.core.types import LazyTuple, Profile

RAW = ["12@1700000300.5", "7@1700000200.25", "3@1700000100"]
PARSED = (("12", 1700000300.5), ("7", 1700000200.25), ("3", 1700000100.0))


def counted(raw):
    parses: list[list[str]] = []

    def parse(entries):
        parses.append(list(entries))
        return tuple((item, float(ts)) for item, _, ts in (entry.rpartition("@") for entry in entries))

    return LazyTuple(raw, parse), parses


def test_it_is_the_tuple_it_stands_for():
    items, _ = counted(RAW)
    assert items == PARSED and items != PARSED[:2]
    assert PARSED == items  # noqa: SIM300 - the tuple on the left: its own == defers to LazyTuple's
    assert list(items) == list(PARSED) and tuple(items) == PARSED
    assert items[0] == ("12", 1700000300.5) and items[-1] == PARSED[-1]
    assert items[:2] == PARSED[:2] and isinstance(items[:2], tuple)
    assert ("7", 1700000200.25) in items and items.index(PARSED[2]) == 2
    assert repr(items) == repr(PARSED) and hash(items) == hash(PARSED)
    assert LazyTuple([], tuple) == () and not LazyTuple([], tuple)


def test_length_and_truth_do_not_parse_and_anything_else_parses_once():
    items, parses = counted(RAW)
    assert len(items) == 3 and items
    assert parses == []
    assert [item for item, _ in items] == ["12", "7", "3"]
    assert items[1][1] == 1700000200.25 and items == PARSED
    assert parses == [RAW]


def test_copies_and_pickles_are_plain_tuples():
    items, _ = counted(RAW)
    for copied in (copy.copy(items), copy.deepcopy(items), pickle.loads(pickle.dumps(items))):
        assert type(copied) is tuple and copied == PARSED
    assert json.dumps(list(items)) == json.dumps(PARSED)


def test_a_profile_reads_through_it():
    starts = LazyTuple(["5.5", "1"], lambda raw: tuple(map(float, raw)))
    profile = Profile(visitor_id="v", recent_items=counted(RAW)[0], session_starts=starts)
    assert profile == Profile(visitor_id="v", recent_items=PARSED, session_starts=(5.5, 1.0))
    assert dataclasses.replace(profile, page_views=1).recent_items == PARSED
    assert profile.sessions_within(10, 6.0) == 2 and profile.items_viewed_within(150, 1700000301) == 2
