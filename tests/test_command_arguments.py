"""Numbers and names a management command cannot use are refused when the arguments are read, in
one line naming the option (an argparse error: a CommandError through call_command), before
anything runs or is stored; never a traceback from deep inside after the work is done."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tailored.management.commands import tailored_refresh_weather
from tailored.models import ApiKey
from tailored.models import Event as EventRow

pytestmark = pytest.mark.django_db
THIRTY_DIGITS = "9" * 30
MAX_DAYS = 3650  # ten years: --since and --max-age-days
MAX_CHUNK_SIZE = 30_000  # under SQLite's default 32,766 parameters a statement


def run(command: str, *args: str, **options) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


# tailored_train --since / --max-age-days -------------------------------------------------------


@pytest.mark.parametrize("value", ["800000", "99999999", THIRTY_DIGITS, str(MAX_DAYS + 1), "9" * 5000])
def test_training_refuses_a_window_longer_than_ten_years(settings, tmp_path, value):
    """800000 days reached datetime ("year is out of range"), 30 digits the timestamp's range."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "MODEL_DIR": str(tmp_path / "models")}
    message = rf"^Error: argument --since: must be a whole number of days, from 1 to {MAX_DAYS} \(got '9*\d*'\)$"
    with pytest.raises(CommandError, match=message):
        run("tailored_train", "--since", value, "--only", "personas")
    assert not (tmp_path / "models").exists()  # nothing trained, nothing published


@pytest.mark.parametrize("value", ["1e308", "inf", "nan", str(MAX_DAYS + 1)])
def test_training_refuses_a_model_age_beyond_ten_years(settings, tmp_path, value):
    """timedelta(days=1e308) raised OverflowError once every model existed."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "MODEL_DIR": str(tmp_path / "models")}
    with pytest.raises(CommandError, match=rf"^Error: argument --max-age-days: must be a number of days above 0, {MAX_DAYS} at most"):
        run("tailored_train", "--if-stale", "--max-age-days", value)


def test_training_takes_the_longest_window(settings, tmp_path):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "MODEL_DIR": str(tmp_path / "models")}
    with pytest.raises(CommandError, match=rf"^training needs at least \d+ stored events in the last {MAX_DAYS} days"):
        run("tailored_train", "--since", str(MAX_DAYS), "--only", "personas")


# tailored_refresh_weather --every --------------------------------------------------------------


@pytest.fixture
def refreshes(settings, monkeypatch):
    """Weather configured for one region; the refreshes the command makes (none are fetched)."""
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "WEATHER_API_URL": "http://127.0.0.1:9/", "WEATHER_REGIONS": {"GB": "London,GB"}}
    made: list[dict] = []
    monkeypatch.setattr(tailored_refresh_weather, "refresh_weather", lambda regions, provider: made.append(regions) or {"GB": None})
    monkeypatch.setattr(tailored_refresh_weather.time, "sleep", sleeps)  # a loop that was not refused stops here
    return made


def sleeps(seconds: float) -> None:
    raise AssertionError(f"the command went on to sleep {seconds} seconds")


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-1", "86401", "soon"])
def test_the_weather_loop_refuses_an_interval_it_cannot_sleep_before_refreshing(refreshes, value):
    """NaN and infinity reached time.sleep, and failed there, after a full refresh."""
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^Error: argument --every: must be a number of seconds from 0 to 86400 \(got '.*'\)$"):
        call_command("tailored_refresh_weather", "--every", value, stdout=out)
    assert refreshes == [] and out.getvalue() == ""


def test_every_zero_refreshes_once(refreshes):
    assert run("tailored_refresh_weather", "--every", "0") == "GB: unavailable\nrefreshed 0 of 1 regions\n"
    assert refreshes == [{"GB": "London,GB"}]


# tailored_purge --chunk-size -------------------------------------------------------------------


@pytest.fixture
def old_events(settings):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "RETENTION_DAYS": 90}
    old = timezone.now() - timedelta(days=91)
    EventRow.objects.bulk_create([EventRow(visitor_id="v", event_id=f"old{i}", type="page_view", ts=old) for i in range(3)])
    return EventRow.objects.filter(visitor_id="v")


@pytest.mark.parametrize("value", [THIRTY_DIGITS, str(MAX_CHUNK_SIZE + 1), "0", "-5", "5k"])
def test_purge_refuses_a_chunk_size_no_database_takes(old_events, value):
    """30 digits failed on SQLite ("datatype mismatch"), more than 32,766 ids a statement on a
    default SQLite build: after the first tables were already purged."""
    with pytest.raises(CommandError, match=rf"^Error: argument --chunk-size: must be a whole number of rows, from 1 to {MAX_CHUNK_SIZE} \(got '.*'\)$"):
        run("tailored_purge", "--chunk-size", value)
    assert old_events.count() == 3  # nothing deleted


def test_purge_refuses_a_chunk_size_given_as_an_option_by_code(old_events):
    with pytest.raises(CommandError, match=rf"^--chunk-size must be from 1 to {MAX_CHUNK_SIZE}, not {THIRTY_DIGITS}\.$"):
        run("tailored_purge", chunk_size=int(THIRTY_DIGITS))
    assert old_events.count() == 3


def test_purge_takes_the_largest_chunk(old_events):
    assert "deleted 3 events older than 90 days" in run("tailored_purge", "--chunk-size", str(MAX_CHUNK_SIZE))
    assert not old_events.exists()


# tailored_api_key create NAME ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), [
    ("x" * 101, r"^The name is 101 characters long; the limit is 100\.$"),  # PostgreSQL: DataError; SQLite stored it
    ("", r"^The name is blank: say which frontend or server will use the key\.$"),
    ("   ", r"^The name is blank: say which frontend or server will use the key\.$"),
    ("a\x00b", r"^The name holds a control character \(such as NUL or a tab\): use printable text\.$"),
    ("shop\tfront", r"^The name holds a control character"),
])
def test_an_api_key_name_the_column_cannot_hold_is_refused_and_no_key_is_made(name, message):
    before = ApiKey.objects.count()
    out = io.StringIO()
    with pytest.raises(CommandError, match=message):
        call_command("tailored_api_key", "create", name, stdout=out)
    assert ApiKey.objects.count() == before and out.getvalue() == ""  # no key printed, none stored


def test_an_api_key_name_of_the_longest_length_is_stored_without_surrounding_spaces():
    out = run("tailored_api_key", "create", f"  {'n' * 100}  ")
    assert out.startswith(f"Created API key {ApiKey.objects.get(name='n' * 100).pk} ({'n' * 100}).")
