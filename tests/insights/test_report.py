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
     ("country=germany", "country"), ("segment=Not%20A%20Slug", "segment"), ("page=x", "page"), ("format=csv&table=x", "table")],
)
def test_a_bad_filter_is_a_json_400_naming_it(editor, query, field):
    response = editor.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_filter" and response.json()["field"] == field


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
