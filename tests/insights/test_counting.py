"""Insight counters (issue 17 item 2) against a real Redis and the test database: the worker counts
impressions, clicks and conversions per cell as it processes stream entries, each entry once, and
the flush moves them into hourly and daily rows exactly once, also when the worker dies mid-flush."""

from __future__ import annotations

import time

import pytest
from django.db.models import Sum

from tailored import conf, worker
from tailored.core.types import Event, Snapshot
from tailored.insights import counting
from tailored.models import InsightDay, InsightHour, TrafficHour
from tests.helpers import HOME_BLOCK, OUTDOORS_VARIANT, mid_hour_now

pytestmark = pytest.mark.django_db

NOW = mid_hour_now()
VISITOR = "c" * 32
PAGE = 3


@pytest.fixture
def stream(redis_client, use_redis_store):
    worker.ensure_group(redis_client)
    counting.flush_clock.reset()
    return redis_client


def impression(event_id, at, variant="fallback", seconds=2.5, block=HOME_BLOCK):
    return Event(event_id, "impression", ts=at, url="/", attrs={"block": block, "variant": variant, "page": PAGE, "seconds": seconds})


def click(event_id, at, variant="fallback"):
    return Event(event_id, "click", ts=at, url="/", attrs={"target": "link", "block": HOME_BLOCK, "variant": variant, "page": PAGE})


def purchase(event_id, at):
    return Event(event_id, "purchase", ts=at, attrs={"order_id": event_id, "value": 10.0, "items": []})


def send(events, visitor=VISITOR, device="mobile", country="DE"):
    """What the events API does: the store records the batch and appends it to the stream."""
    conf.get_profile_store().record(visitor, events, NOW, Snapshot(device=device, country=country))


def process(client):
    who = worker.Consumer(name="w1", batch=50, block_ms=0)
    while worker.handle_entries(client, worker.read_new(client, who, 50, block=False)):
        pass


def totals(**where):
    return InsightHour.objects.filter(**where).aggregate(
        i=Sum("impressions"), u=Sum("viewers"), c=Sum("clicks"), ca=Sum("conversions"), cl=Sum("last_touch_conversions"), v=Sum("view_ms")
    )


def test_an_impression_a_click_and_a_purchase_become_one_row_per_segment(stream):
    send([impression("i1", NOW - 30), click("c1", NOW - 20), purchase("p1", NOW - 10)])
    process(stream)
    assert counting.flush(stream) > 0

    everyone = totals(segment="", block=HOME_BLOCK, variant="fallback")
    assert everyone == {"i": 1, "u": 1, "c": 1, "ca": 1, "cl": 1, "v": 2500}
    row = InsightHour.objects.get(segment="", block=HOME_BLOCK)
    assert (row.page_id, row.device, row.country) == (PAGE, "mobile", "DE")
    # The visitor's segments now (as the worker evaluated them, at the clock's time, not the
    # events': a daypart segment can differ) each get the same counts.
    expected = counting.visitor_dims([VISITOR], time.time())[VISITOR].segments
    assert set(InsightHour.objects.exclude(segment="").values_list("segment", flat=True)) == set(expected)
    assert InsightDay.objects.get(segment="", block=HOME_BLOCK).impressions == 1
    assert TrafficHour.objects.aggregate(e=Sum("events"))["e"] == 3


def test_a_redelivered_entry_counts_once(stream):
    send([impression("i1", NOW - 30)])
    entries = worker.read_new(stream, worker.Consumer(name="w1", block_ms=0), 10, block=False)
    decoded, _ = worker.decode_entries(entries)
    assert counting.count_entries(stream, decoded) == 1
    assert counting.count_entries(stream, decoded) == 0  # the same entry again: claimed after a crash
    counting.flush(stream)
    assert totals(segment="")["i"] == 1


def test_a_redelivered_entry_in_a_chunk_of_new_ones_counts_once_and_the_new_ones_count(stream):
    send([impression("i1", NOW - 30)])
    send([impression("i2", NOW - 20, variant=OUTDOORS_VARIANT)], visitor="d" * 32)
    send([click("c1", NOW - 10)], visitor="e" * 32)
    entries = worker.read_new(stream, worker.Consumer(name="w1", block_ms=0), 10, block=False)
    decoded, _ = worker.decode_entries(entries)
    assert counting.count_entries(stream, decoded[1:2]) == 1  # counted, then the worker died
    assert counting.count_entries(stream, decoded) == 2  # the three again, claimed after the crash
    counting.flush(stream)
    assert (totals(segment="", variant="fallback")["i"], totals(segment="", variant="fallback")["c"]) == (1, 1)
    assert (totals(segment="", variant=OUTDOORS_VARIANT)["i"], totals(segment="", variant=OUTDOORS_VARIANT)["u"]) == (1, 1)
    assert TrafficHour.objects.aggregate(e=Sum("events"))["e"] == 3


def test_counts_of_the_hash_written_before_the_adds_list_are_still_flushed(stream):
    """A site upgraded with counts not yet flushed: the old hash is flushed once, with the new list."""
    hour = int(NOW // 3600)
    stream.hset(counting.HOURS_KEY, mapping={f"{hour}|{PAGE}|{HOME_BLOCK}|fallback||mobile|DE|i": 4, f"T|{hour}|e": 4})
    send([impression("i1", NOW - 30)])
    process(stream)
    counting.flush(stream)
    counting.flush(stream)
    assert totals(segment="", variant="fallback")["i"] == 5
    assert not stream.exists(counting.HOURS_KEY, counting.FLUSHING_KEY, counting.ADDS_KEY, counting.TAKING_KEY)


def test_while_the_database_is_away_the_adds_list_is_folded_into_one_blob_and_nothing_is_lost(stream, monkeypatch):
    for n in range(counting.FOLD_AT + 6):
        send([impression(f"i{n}", NOW - 600 + n)], visitor=f"{n:032x}")
        process(stream)  # a chunk (and a viewers blob) per batch
    assert stream.llen(counting.ADDS_KEY) >= counting.FOLD_AT
    before = counting.pending(stream)

    def database_away(*args, **kwargs):
        raise ConnectionError("the database is away")

    monkeypatch.setattr(counting, "apply", database_away)
    counting.flush_clock.reset()
    assert counting.flush_due(stream) == 0
    monkeypatch.undo()
    # The failed flush left its batch (the list as it was when taken); later chunks were folded.
    assert stream.exists(counting.TAKING_KEY) and not stream.exists(counting.ADDS_KEY)
    send([impression("late", NOW - 5)])
    process(stream)
    for _ in range(counting.FOLD_AT):
        send([click(f"c{_}", NOW - 4)], visitor="f" * 32)
        process(stream)
    counting.flush_clock.reset()
    monkeypatch.setattr(counting, "apply", database_away)
    counting.flush_due(stream)  # the unfinished batch fails again: the list folds
    monkeypatch.undo()
    assert stream.llen(counting.ADDS_KEY) == 1
    folded, sets = counting.pending(stream)
    assert sum(amount for name, amount in folded.items() if name.endswith("|c")) == counting.FOLD_AT
    assert sets  # the segment sets the folded fields name came along
    counting.flush(stream)  # the database is back: the first batch...
    counting.flush(stream)  # ...then the folded list
    assert totals(segment="", variant="fallback")["i"] == counting.FOLD_AT + 7
    assert totals(segment="", variant="fallback")["c"] == counting.FOLD_AT
    assert sum(before[0][name] for name in before[0] if name.endswith("|u")) == counting.FOLD_AT + 6


def test_a_fold_overtaken_by_another_workers_flush_puts_nothing_back(stream, monkeypatch):
    send([impression("i1", NOW - 30)])
    send([impression("j1", NOW - 20)], visitor="d" * 32)
    process(stream)
    summing = counting.sum_blobs

    def another_worker_flushes_meanwhile(blobs):
        monkeypatch.setattr(counting, "sum_blobs", summing)
        counting.flush(stream)  # restores the fold's blobs onto the list, then flushes them
        return summing(blobs)

    monkeypatch.setattr(counting, "sum_blobs", another_worker_flushes_meanwhile)
    counting.fold(stream)
    counting.flush(stream)
    assert (totals(segment="")["i"], totals(segment="")["u"]) == (2, 2)  # not 4: the fold's sum was dropped
    assert not stream.exists(counting.ADDS_KEY, counting.PREFIX + counting.FOLDING, counting.TAKING_KEY)


def test_an_unreadable_blob_is_skipped_with_a_warning_and_the_others_are_flushed(stream, caplog):
    send([impression("i1", NOW - 30)])
    process(stream)
    stream.rpush(counting.ADDS_KEY, "{not json", '{"a": 1}', "[]")
    counting.flush(stream)
    assert totals(segment="")["i"] == 1
    assert caplog.text.count("an unreadable insight counts blob was skipped") == 3
    assert not stream.exists(counting.ADDS_KEY, counting.TAKING_KEY)


def test_a_counter_value_that_is_not_a_count_is_skipped_with_a_warning_and_the_rest_is_flushed(stream, caplog):
    send([impression("i1", NOW - 30, seconds=2.5)])
    process(stream)
    hour = int((NOW - 30) // 3600)
    head = f"{hour}|{PAGE}|{HOME_BLOCK}|fallback||mobile|DE"
    stream.rpush(counting.ADDS_KEY, f'[{{"{head}|i": -5, "{head}|c": 1.5, "{head}|v": {2**63}, "{head}|ca": 2}}]')
    counting.flush(stream)
    row = totals(segment="")
    assert (row["i"], row["c"], row["v"], row["ca"]) == (1, 0, 2500, 2)  # the counts added up, the rest left out
    assert caplog.text.count("not a count: skipped") == 3


def test_a_fold_the_worker_did_not_finish_goes_back_onto_the_list_unsummed(stream):
    send([impression("i1", NOW - 30)])
    send([impression("j1", NOW - 20)], visitor="d" * 32)
    process(stream)
    blobs = stream.lrange(counting.ADDS_KEY, 0, -1)
    stream.rename(counting.ADDS_KEY, counting.PREFIX + counting.FOLDING)  # taken by a fold, then the worker died
    stream.lpush(counting.PREFIX + counting.FOLDING, "a-dead-fold")
    send([click("c1", NOW - 10)])
    process(stream)
    counting.flush(stream)
    assert (totals(segment="")["i"], totals(segment="")["u"], totals(segment="")["c"]) == (2, 2, 1)
    assert not stream.exists(counting.PREFIX + counting.FOLDING) and len(blobs) == 2  # the chunk and its viewers


def test_conversions_go_to_every_variant_seen_in_the_window_and_the_last_one(stream):
    send([impression("i1", NOW - 600, variant="fallback", block="block-a")])
    send([impression("i2", NOW - 300, variant=OUTDOORS_VARIANT)])
    process(stream)
    send([purchase("p1", NOW - 60)])  # a later batch: attribution reads what the visitor saw
    process(stream)
    counting.flush(stream)
    a, b = totals(segment="", block="block-a"), totals(segment="", block=HOME_BLOCK)
    assert (a["ca"], a["cl"]) == (1, 0)
    assert (b["ca"], b["cl"]) == (1, 1)


def test_a_goal_after_the_attribution_window_is_nobodys_conversion(stream, personalization):
    personalization(INSIGHTS_ATTRIBUTION_MINUTES=5)
    send([impression("i1", NOW - 900), purchase("p1", NOW - 60)])
    process(stream)
    counting.flush(stream)
    assert totals(segment="")["ca"] == 0


def test_a_second_viewer_is_unique_and_a_repeat_viewer_is_not(stream):
    send([impression("i1", NOW - 30)])
    send([impression("i2", NOW - 20)])
    send([impression("j1", NOW - 10)], visitor="d" * 32)
    process(stream)
    counting.flush(stream)
    assert (totals(segment="")["i"], totals(segment="")["u"]) == (3, 2)


def test_the_flush_is_exactly_once_when_the_worker_dies_inside_its_transaction(stream, monkeypatch):
    """Dying after the commit, a real worker process: tests/insights/test_flush_crash.py."""
    send([impression("i1", NOW - 30), click("c1", NOW - 20)])
    process(stream)

    def die(*args, **kwargs):  # the database goes away inside the flush's transaction
        raise SystemExit("killed")

    monkeypatch.setattr(counting, "add_counts", die)
    with pytest.raises(SystemExit):
        counting.flush(stream)
    monkeypatch.undo()
    assert not InsightHour.objects.exists()
    # More counted meanwhile, then a restarted worker flushes: the old batch once, then the new.
    send([impression("i9", NOW - 5, variant=OUTDOORS_VARIANT)])
    process(stream)
    counting.flush(stream)
    counting.flush(stream)
    assert totals(segment="", variant="fallback") == {"i": 1, "u": 1, "c": 1, "ca": 0, "cl": 0, "v": 2500}
    assert totals(segment="", variant=OUTDOORS_VARIANT)["i"] == 1
    assert not stream.exists(counting.TAKING_KEY) and not stream.exists(counting.ADDS_KEY)


def test_tailored_purge_deletes_insight_rows_past_their_retention(stream):
    from datetime import UTC, datetime, timedelta

    from tailored.management.commands.tailored_purge import purge

    send([impression("i1", NOW - 30)])
    process(stream)
    counting.flush(stream)
    now = datetime.fromtimestamp(NOW, tz=UTC)
    assert purge(now)["insight hours"][0] == 0
    hours = InsightHour.objects.count()
    later = purge(now + timedelta(days=36))  # INSIGHTS_HOURLY_DAYS = 35; daily rows stay
    assert later["insight hours"] == (hours, 35) and InsightDay.objects.exists()
    assert purge(now + timedelta(days=402))["insight days"][0] > 0
    assert not InsightDay.objects.exists()


def test_a_segment_set_counts_for_every_visitor_and_each_of_its_segments_and_a_single_segment_field_for_its_own():
    """The worker writes one field per event and stat under the visitor's segment set; counters
    written one per segment (before the segment sets) still flush into their own rows."""
    hour = int(NOW // 3600)
    cells, _ = counting.group(
        {f"{hour}|3|b|v|~fans,new|mobile|DE|i": 2, f"{hour}|3|b|v|fans|mobile|DE|i": 1, f"{hour}|3|b|v||mobile|DE|i": 4}
    )
    assert {key[4]: stats["impressions"] for key, stats in cells.items()} == {"": 6, "fans": 3, "new": 2}


def test_a_viewer_is_unique_once_per_hour_however_long_after_the_attribution_window_they_return(stream, personalization):
    personalization(INSIGHTS_ATTRIBUTION_MINUTES=5)
    # NOW is mid-hour: the first impression is in the hour before, the other two in NOW's, 25
    # minutes apart (five times the attribution window, which the visitor's hash outlives).
    send([impression("i0", NOW - 1860), impression("i1", NOW - 1500), impression("i2", NOW - 10)])
    process(stream)
    seen_key = f"{counting.PREFIX}seen:{counting.digest(VISITOR)}"
    assert stream.ttl(seen_key) > 3600  # the hash lives the hour its unique viewers are counted in
    counting.flush(stream)
    hours = InsightHour.objects.filter(segment="").order_by("hour")
    assert [(row.impressions, row.viewers) for row in hours] == [(1, 1), (2, 1)]


def test_an_entry_counted_late_never_moves_the_attribution_back_nor_counts_its_viewer_again(stream):
    send([impression("i2", NOW - 10)])
    process(stream)
    send([impression("i1", NOW - 20)])  # an older impression of the same cell, counted after
    process(stream)
    seen = stream.hgetall(f"{counting.PREFIX}seen:{counting.digest(VISITOR)}")
    assert [float(at) for at in seen.values()] == [NOW - 10]
    counting.flush(stream)
    assert (totals(segment="")["i"], totals(segment="")["u"]) == (2, 1)


def test_erasure_deletes_the_visitors_attribution_hash_and_keeps_the_counts(stream):
    from tailored.erasure import erase_visitor

    send([impression("i1", NOW - 10)])
    process(stream)
    seen_key = f"{counting.PREFIX}seen:{counting.digest(VISITOR)}"
    assert stream.exists(seen_key)
    assert erase_visitor(VISITOR)["insight_attribution"] == 1
    assert not stream.exists(seen_key)
    counting.flush(stream)
    assert totals(segment="")["i"] == 1


def test_the_counters_name_the_visitors_segment_set_by_a_short_id_and_the_flush_spreads_it(stream):
    """Each field names the visitor's segment set by an 8-character id (not its slugs); the same
    blob lists the set's segments, so the flush that takes the fields takes the list too."""
    from tailored.models import Segment

    Segment.objects.create(name="On a phone", slug="on-a-phone", rule={"field": "context.device", "op": "eq", "value": "mobile"})
    Segment.objects.create(name="In Germany", slug="in-germany", rule={"field": "context.country", "op": "eq", "value": "DE"})
    send([impression("i1", NOW - 30), click("c1", NOW - 20)])
    process(stream)
    fields, sets = counting.pending(stream)
    assert len(sets) == 1
    (set_id, members), = sets.items()
    segments = members.split(",")
    assert {"on-a-phone", "in-germany"} <= set(segments) and segments == sorted(segments)
    assert len(set_id) == 8
    impressions = [name for name in fields if name.endswith("|i")]
    assert impressions == [f"{int(NOW // 3600)}|{PAGE}|{HOME_BLOCK}|fallback|^{set_id}|mobile|DE|i"]

    counting.flush(stream)
    rows = {row.segment: (row.impressions, row.clicks) for row in InsightHour.objects.filter(block=HOME_BLOCK)}
    assert rows == dict.fromkeys(["", *segments], (1, 1))


def test_a_set_id_without_its_list_counts_for_every_visitor_only():
    hour = int(NOW // 3600)
    values = {f"{hour}|3|b|v|^AbCdEfGh|mobile|DE|i": 2, f"{hour}|3|b|v|^AbCdEfGh|mobile|DE|v": 900}
    cells, _ = counting.group(values, {})
    assert {key[4]: (stats["impressions"], stats["view_ms"]) for key, stats in cells.items()} == {"": (2, 900)}
    cells, _ = counting.group(values, {"AbCdEfGh": "fans,new"})
    assert {key[4]: stats["impressions"] for key, stats in cells.items()} == {"": 2, "fans": 2, "new": 2}


def test_segment_sets_that_share_a_segment_add_up_in_its_row_and_places_stay_apart():
    hour = int(NOW // 3600)
    values = {
        f"{hour}|3|b|v|^A|mobile|DE|i": 2, f"{hour}|3|b|v|^B|mobile|DE|i": 3, f"{hour}|3|b|v|^B|mobile|DE|v": 700,
        f"{hour}|3|b|v|^A|mobile|FR|i": 1,
    }
    cells, _ = counting.group(values, {"A": "fans,new", "B": "fans"})
    found = {(key[4], key[6]): (stats["impressions"], stats["view_ms"]) for key, stats in cells.items()}
    assert found == {
        ("", "DE"): (5, 700), ("fans", "DE"): (5, 700), ("new", "DE"): (2, 0),
        ("", "FR"): (1, 0), ("fans", "FR"): (1, 0), ("new", "FR"): (1, 0),
    }
