"""The Redis store writes a batch in one round trip: it sends every session outcome of the batch
(`session_options`) and the profile's last-seen time, read in the same script, picks one. The
pick must be exactly what `delta_for` computes from that last-seen time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tailored.core.counters import PriorState, delta_for, session_options
from tailored.core.types import Event

GAP = 1800.0
BASE = 1_764_000_000.0

offsets = st.floats(min_value=-30_000, max_value=30_000, allow_nan=False, allow_infinity=False)
kinds = st.sampled_from(["page_view", "add_to_cart", "purchase", "click"])


@st.composite
def batches(draw):
    n = draw(st.integers(1, 12))
    events = []
    for i in range(n):
        kind = draw(kinds)
        attrs = {"page_type": draw(st.sampled_from(["article", "product"]))} if kind == "page_view" else {}
        events.append(Event(id=f"e{i}", type=kind, ts=BASE + draw(offsets), url=f"/p{i}/", attrs=attrs))
    return events


last_seen_times = st.one_of(
    st.none(),
    st.floats(min_value=BASE - 40_000, max_value=BASE + 40_000, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=400, deadline=None)
@given(batches(), last_seen_times)
def test_the_option_a_last_seen_time_picks_is_what_delta_for_computes(events, last_seen):
    expected = delta_for(events, PriorState(last_seen=last_seen), GAP).session
    assert session_options(events, GAP).chosen(last_seen, GAP) == expected


@settings(max_examples=200, deadline=None)
@given(batches())
def test_last_seen_times_at_the_edges_of_the_gap_pick_the_same_as_delta_for(events):
    # The float edge: a last-seen time exactly the gap before a candidate leaves it closed.
    for candidate in session_options(events, GAP).candidates:
        for last_seen in (candidate - GAP, candidate - GAP - 0.001, candidate - GAP + 0.001, candidate):
            expected = delta_for(events, PriorState(last_seen=last_seen), GAP).session
            assert session_options(events, GAP).chosen(last_seen, GAP) == expected


def test_a_batch_after_a_long_pause_opens_a_session_and_one_within_the_gap_does_not():
    events = [Event(id="a", type="page_view", ts=BASE, url="/shop/"), Event(id="b", type="page_view", ts=BASE + 60, url="/x/")]
    options = session_options(events, GAP)
    assert options.candidates == (BASE,)
    assert options.chosen(BASE - 3 * GAP, GAP).starts == [BASE]
    assert options.chosen(BASE - 10, GAP).starts == []
    assert options.chosen(None, GAP).landing == ("/shop/", None)
