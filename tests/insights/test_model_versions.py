"""Recommendations by model version (issue 17 item 5): the recommendation block's impressions and
clicks, keyed by the model version that chose the list, land in rows per version; the Insights
report shows them per version with CTR intervals and a CSV; and a drift alert is raised when the
current version's CTR falls significantly below the previous version's, never on equal rates or
low volume."""

from __future__ import annotations

import csv
import io
import math
import time
import uuid

import pytest
from django.core import mail
from scipy.stats import norm

from tailored.core.insights import (
    VersionCounts,
    model_ctr_drop,
    two_proportion_drop_p_value,
    wilson_interval,
)
from tailored.insights import alerts, counting, monitoring
from tailored.models import Alert, InsightHour
from tests.insights.test_counting import process, send, stream  # noqa: F401 - the real-Redis fixture

pytestmark = pytest.mark.django_db

OLD, NEW = "20250101T000000000000Z", "20250201T000000000000Z"
# The demo homepage's recommendation block (in the returning visitors' variant).
RECOMMENDATIONS = "388dca33-35b6-5d46-a379-1c00055aa151"
HOUR = int(time.time() // 3600) - 1
URL = "/admin/insights/"


def home_page_id() -> int:
    from cms.models import HomePage

    return HomePage.objects.live().first().pk


def served(variant: str, impressions: int, clicks: int, hours=(HOUR,), conversions: int = 0) -> None:
    """Rows as the worker's flush writes them, spread over `hours`."""
    values = {}
    for hour in hours:
        cell = f"{hour}|{home_page_id()}|{RECOMMENDATIONS}|{variant}||desktop|DE"
        share = len(hours)
        values.update({f"{cell}|i": impressions // share, f"{cell}|c": clicks // share, f"{cell}|ca": conversions // share})
    counting.apply(uuid.uuid4().hex, values)


# -- counting -----------------------------------------------------------------------------------


def test_impressions_and_clicks_of_each_model_version_land_in_their_own_rows(stream):  # noqa: F811
    from tailored.core.types import Event

    now = time.time()
    decided = {"block": RECOMMENDATIONS, "page": 3}
    send([
        Event("i1", "impression", ts=now - 30, url="/", attrs={**decided, "variant": f"model:{OLD}", "seconds": 1.5}),
        Event("c1", "click", ts=now - 20, url="/", attrs={**decided, "variant": f"model:{OLD}", "target": "link"}),
        Event("i2", "impression", ts=now - 10, url="/", attrs={**decided, "variant": f"model:{NEW}", "seconds": 2.0}),
    ])
    process(stream)
    counting.flush(stream)
    by_version = {
        row.variant: (row.impressions, row.clicks)
        for row in InsightHour.objects.filter(block=RECOMMENDATIONS, segment="")
    }
    assert by_version == {f"model:{OLD}": (1, 1), f"model:{NEW}": (1, 0)}


# -- the report ---------------------------------------------------------------------------------


def test_the_report_shows_each_version_with_its_ctr_interval_and_exports_it(editor):
    served(f"model:{OLD}", 4000, 200, conversions=40)
    served(f"model:{NEW}", 1000, 20, hours=(HOUR - 1, HOUR))
    served("popular", 500, 10)
    html = editor.get(URL).content.decode()
    table = html[html.index("data-tl-model-versions"):]
    # Newest version first, then the lists served without a model.
    assert table.index(f'data-tl-model-version="model:{NEW}"') < table.index(f'data-tl-model-version="model:{OLD}"') < table.index('data-tl-model-version="popular"')
    low, high = wilson_interval(200, 4000)
    assert f"Model {OLD}" in table and "5.0%" in table and f"{low:.1%}" in table and f"{high:.1%}" in table
    assert "Popular (no model)" in table

    response = editor.get(URL + "?format=csv&table=models")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["version"] for row in rows] == [f"model:{NEW}", f"model:{OLD}", "popular"]
    new = rows[0]
    assert (new["impressions"], new["clicks"], new["ctr"]) == ("1000", "20", "0.02")
    assert new["first_seen_hour"] < new["last_seen_hour"]  # two hours
    assert rows[1]["conversion_rate"] == "0.01"


def test_without_recommendation_impressions_the_table_says_what_will_appear(editor):
    html = editor.get(URL).content.decode()
    assert "data-tl-no-model-versions" in html and "each version of the recommender" in html


# -- the drift alert ----------------------------------------------------------------------------


def test_the_two_proportion_test_matches_its_formula():
    # 5% of 4000 against 2% of 4000: pooled 3.5%, z = 0.03 / sqrt(0.035 * 0.965 * 2 / 4000) = 7.30.
    z = 0.03 / math.sqrt(0.035 * 0.965 * 2 / 4000)
    assert two_proportion_drop_p_value(200, 4000, 80, 4000) == pytest.approx(norm.sf(z), rel=1e-9)
    assert two_proportion_drop_p_value(80, 4000, 200, 4000) == pytest.approx(1 - norm.sf(z))  # a rise is no drop
    assert two_proportion_drop_p_value(0, 0, 1, 10) == 1.0


@pytest.mark.parametrize(
    ("new_clicks", "impressions", "fires"),
    [(80, 4000, True), (200, 4000, False), (195, 4000, False), (8, 400, False)],
    ids=["5%-to-2%", "equal", "tiny-dip", "low-volume"],
)
def test_the_pure_rule(new_clicks, impressions, fires):
    old_clicks = impressions // 20  # 5%
    finding = model_ctr_drop(
        VersionCounts(OLD, impressions, old_clicks), VersionCounts(NEW, impressions, new_clicks),
        alpha=0.001, min_impressions=1000, min_expected=10, min_change=0.2,
    )
    assert (finding is not None) is fires


@pytest.fixture
def no_model(personalization, tmp_path):
    # No published recommender: the newest version in the rows is the current one.
    personalization(MODEL_DIR=str(tmp_path), ALERT_EMAILS=["ops@example.com"])


def test_a_drop_from_five_to_two_percent_raises_one_drift_alert_in_the_hourly_check(no_model):
    served(f"model:{OLD}", 4000, 200, hours=range(HOUR - 44, HOUR - 24))  # 5%
    served(f"model:{NEW}", 4000, 80, hours=range(HOUR - 20, HOUR))  # 2%
    raised = [a for a in alerts.check(HOUR + 1) if a.kind == Alert.Kind.MODEL_CTR]
    assert len(raised) == 1
    alert = raised[0]
    assert (alert.key, alert.direction, alert.observed, alert.baseline) == (f"model|{OLD}|{NEW}", "drop", 0.02, 0.05)
    assert f"Recommendation CTR of model {NEW} dropped 60%: 2.00% over 4,000 impressions against 5.00%" in alert.message
    assert alert.since.timestamp() == (HOUR - 20) * 3600 and alert.link.endswith("#models")
    assert len(mail.outbox) == 1 and "dropped 60%" in mail.outbox[0].body
    assert monitoring.model_ctr_alert(HOUR + 1) is None  # one a day while it lasts


@pytest.mark.parametrize(("old", "new"), [((4000, 200), (4000, 200)), ((400, 20), (400, 8))], ids=["equal-rates", "low-volume"])
def test_equal_rates_or_low_volume_raise_nothing(no_model, old, new):
    served(f"model:{OLD}", *old, hours=range(HOUR - 44, HOUR - 24))
    served(f"model:{NEW}", *new, hours=range(HOUR - 20, HOUR))
    assert monitoring.model_ctr_alert(HOUR + 1) is None
    assert not Alert.objects.filter(kind=Alert.Kind.MODEL_CTR).exists()


def test_the_current_version_is_the_registrys(no_model, monkeypatch):
    # The registry still serves the old version (say, the new one was rolled back): nothing to compare.
    served(f"model:{OLD}", 4000, 200, hours=range(HOUR - 44, HOUR - 24))
    served(f"model:{NEW}", 4000, 80, hours=range(HOUR - 20, HOUR))
    monkeypatch.setattr(monitoring, "current_version", lambda name: OLD)
    assert monitoring.model_ctr_alert(HOUR + 1) is None


def test_a_recommendation_ctr_alert_makes_if_stale_retrain(no_model, monkeypatch):
    from tailored.ml import registry

    for name in ("personas", "propensity", "recommender"):
        registry.publish(name, {"demo": True}, {})
    assert monitoring.stale_reason(7, 28) is None
    served(f"model:{OLD}", 4000, 200, hours=range(HOUR - 44, HOUR - 24))
    served(f"model:{NEW}", 4000, 80, hours=range(HOUR - 20, HOUR))
    monkeypatch.setattr(monitoring, "current_version", lambda name: NEW)  # the rows' version, not the stand-in's
    assert monitoring.model_ctr_alert(HOUR + 1) is not None
    assert "CTR fell against its previous version" in monitoring.stale_reason(7, 28)
