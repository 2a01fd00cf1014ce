"""The demo's insights (issue 17): training on synthetic visitors leaves four weeks of counts for
every homepage variant and an alert from the seeded anomaly, so the report is not empty."""

from __future__ import annotations

import io
import re
import time

import pytest

from tailored.insights.demo import load_demo_insights
from tailored.models import Alert, InsightDay, InsightHour
from tests.helpers import HOME_BLOCK

pytestmark = pytest.mark.django_db


def test_the_demo_homepage_gets_counts_per_segment_and_device_and_a_seeded_alert(editor):
    from cms.models import HomePage

    home = HomePage.objects.live().first()
    out = io.StringIO()
    written = load_demo_insights(home.pk, seed=7, say=out.write)
    assert written > 0 and "seeded a CTR drop" in out.getvalue()
    assert set(InsightDay.objects.values_list("device", flat=True).distinct()) == {"desktop", "mobile", "tablet"}
    assert InsightDay.objects.filter(segment="electronics-fans").exists()
    # The seeded variant's cells (every visitor, and the segment it targets), and nothing else.
    alerts = list(Alert.objects.all())
    assert alerts and {(a.kind, a.direction) for a in alerts} == {("ctr", "drop")}
    assert len({a.key.rsplit("|", 1)[0] for a in alerts}) == 1
    assert alerts[0].key.startswith(f"{home.pk}|{HOME_BLOCK}|")  # the hero, the busiest block

    html = editor.get("/admin/insights/").content.decode()
    assert "Electronics fans" in html and "data-tl-alert=\"ctr\"" in html and "data-tl-empty" not in html
    assert load_demo_insights(home.pk, say=out.write) == 0  # once
    assert InsightHour.objects.count() == written


def test_the_demo_shows_two_recommender_versions_and_the_drift_check_compares_them(editor):
    from cms.models import HomePage
    from tailored.insights.monitoring import model_ctr_alert, version_counts

    home = HomePage.objects.live().first()
    now = time.time()
    load_demo_insights(home.pk, seed=7, now=now, say=io.StringIO().write)

    html = editor.get("/admin/insights/").content.decode()
    assert "data-tl-no-model-versions" not in html
    table = html[html.index("data-tl-model-versions"):]
    versions = re.findall(r'data-tl-model-version="model:([^"]+)"', table)
    assert len(versions) == 2 and versions == sorted(versions, reverse=True)  # the default week: both, newest first
    assert 'data-tl-model-version="popular"' in table
    # The drift check has two versions with enough traffic to compare, and the newer one is
    # slightly better, so it raises nothing.
    counts, _first_seen = version_counts(int(now // 3600))
    older, newer = counts[versions[1]], counts[versions[0]]
    assert min(older.impressions, newer.impressions) >= 1000
    assert 1.0 < (newer.clicks / newer.impressions) / (older.clicks / older.impressions) < 1.2
    assert model_ctr_alert(int(now // 3600)) is None
    assert not Alert.objects.filter(kind="model_ctr").exists()
