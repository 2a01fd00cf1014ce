"""Anomaly alerts (issue 17 item 4), checked by the worker once an hour.

For every (page, block, variant, segment) cell with enough traffic, the CTR and the conversion
rate of the last ALERT_WINDOW_HOURS complete hours are tested against the same hours of the
previous ALERT_BASELINE_WEEKS weeks (a seasonal baseline: Monday 9:00 against Mondays 9:00) with
the exact conditional test of two rates, Benjamini-Hochberg at ALERT_FDR across the cells of one
run, a minimum volume and a minimum relative change (tailored.core.insights.find_anomalies).
Tracking failures: the last hour's event count far below the same hour's in previous weeks, or
many new dead letters. The recommender's current version's CTR significantly below the previous
version's (tailored.insights.monitoring.model_ctr_alert). Each anomaly becomes an `Alert` row (one open alert per cell and kind a
day), a webhook (topic `insights_alert`, signed and retried by tailored.webhooks) and an email.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Sum
from django.urls import reverse
from django.utils.http import urlencode

from tailored import conf, webhooks
from tailored.core.insights import Finding, find_anomalies, seasonal_windows, volume_drop
from tailored.models import Alert, InsightHour, TrafficHour

from . import counting, monitoring
from .labels import block_names, page_titles

logger = logging.getLogger(__name__)

TOPIC = "insights_alert"
# Checks start this long into an hour: the worker's last flush of the hour before has run.
CHECK_DELAY_SECONDS = 120
METRICS = {Alert.Kind.CTR: "clicks", Alert.Kind.CONVERSION: "conversions"}
METRIC_WORDS = {Alert.Kind.CTR: "CTR", Alert.Kind.CONVERSION: "Conversion rate"}


def check_due(client: Any, now: float | None = None) -> int:
    """For the worker's loop: check the hour that just ended, once across all workers (the first
    to set its Redis mark wins). Returns how many alerts were raised."""
    now = time.time() if now is None else now
    if now % 3600 < CHECK_DELAY_SECONDS:
        return 0
    end_hour = int(now // 3600)
    if not client.set(f"{counting.PREFIX}checked:{end_hour}", 1, nx=True, ex=7 * 86400):
        return 0
    try:
        counting.flush(client)  # the last hour's counts first
        return len(check(end_hour))
    except Exception:
        logger.exception("insight alerts for the hour ending %s not checked", _moment(end_hour))
        return 0


def check(end_hour: int) -> list[Alert]:
    """Test the hours before `end_hour` (epoch hours, exclusive) and raise what moved."""
    window, weeks = int(conf.get("ALERT_WINDOW_HOURS")), int(conf.get("ALERT_BASELINE_WEEKS"))
    counts = hourly_counts(end_hour, window, weeks)
    raised: list[Alert] = []
    for kind, metric in METRICS.items():
        cells = seasonal_windows(
            {key: {hour: (n, by_metric[metric]) for hour, (n, by_metric) in hours.items()} for key, hours in counts.items()},
            end_hour, window, weeks,
        )
        findings = find_anomalies(
            cells,
            q=float(conf.get("ALERT_FDR")),
            min_trials=int(conf.get("ALERT_MIN_IMPRESSIONS")),
            min_expected=float(conf.get("ALERT_MIN_EXPECTED")),
            min_change=float(conf.get("ALERT_MIN_CHANGE")),
        )
        raised += [alert for f in findings if (alert := raise_cell_alert(kind, f, end_hour - window))]
    raised += tracking_alerts(end_hour, weeks)
    # Model monitoring (issue 17 item 5): the recommender's new version against the one before.
    if (model_alert := monitoring.model_ctr_alert(end_hour)) is not None:
        raised.append(model_alert)
    return raised


def hourly_counts(end_hour: int, window: int, weeks: int) -> dict[str, dict[int, tuple[int, dict[str, int]]]]:
    """cell -> hour -> (impressions, {clicks, conversions}) for the window and its baseline hours,
    summed over devices and countries (one query)."""
    hours = [h - week * 168 for week in range(weeks + 1) for h in range(end_hour - window, end_hour)]
    rows = (
        InsightHour.objects.filter(hour__in=[_moment(h) for h in hours])
        .values("hour", "page_id", "block", "variant", "segment")
        .annotate(n=Sum("impressions"), clicks=Sum("clicks"), conversions=Sum("conversions"))
    )
    counts: dict[str, dict[int, tuple[int, dict[str, int]]]] = defaultdict(dict)
    for row in rows:
        key = f"{row['page_id']}|{row['block']}|{row['variant']}|{row['segment']}"
        counts[key][int(row["hour"].timestamp() // 3600)] = (row["n"], {"clicks": row["clicks"], "conversions": row["conversions"]})
    return counts


def raise_cell_alert(kind: str, finding: Finding, since_hour: int) -> Alert | None:
    """An Alert for a moved cell, unless the same cell and kind raised one in the last day."""
    if Alert.objects.filter(kind=kind, key=finding.key, created_at__gte=_moment(since_hour) - timedelta(days=1)).exists():
        return None
    page, block, variant, segment = finding.key.split("|")
    names = block_names([int(page)]).get(block)
    title = page_titles([int(page)]).get(int(page), "a headless page")
    variant_label = names.variants.get(variant, variant) if names else variant
    change = finding.observed / finding.baseline - 1
    message = (
        f"{METRIC_WORDS[kind]} of “{variant_label}” ({names.name if names else block[:8]}, {title}) "
        f"for {segment or 'all visitors'} {'dropped' if change < 0 else 'rose'} {abs(change):.0%}: "
        f"{finding.observed:.2%} against {finding.baseline:.2%} in the same hours of the last "
        f"{conf.get('ALERT_BASELINE_WEEKS')} weeks, since {_moment(since_hour):%Y-%m-%d %H:00} UTC."
    )
    link = report_link(page=page, block=block, segment=segment, since=_moment(since_hour))
    alert = Alert.objects.create(
        kind=kind, key=finding.key, direction=finding.direction, since=_moment(since_hour),
        baseline=finding.baseline, observed=finding.observed, p_value=finding.p_value, message=message, link=link,
    )
    notify(alert, {"page": int(page), "block": block, "variant": variant, "segment": segment})
    return alert


def tracking_alerts(end_hour: int, weeks: int) -> list[Alert]:
    """Events in the last hour far below the same hour of previous weeks; many dead letters."""
    hours = {int(row.hour.timestamp() // 3600): row for row in TrafficHour.objects.filter(
        hour__in=[_moment(end_hour - 1 - week * 168) for week in range(weeks + 1)])}
    last = hours.get(end_hour - 1)
    baseline = [hours[h].events for h in (end_hour - 1 - w * 168 for w in range(1, weeks + 1)) if h in hours]
    raised = []
    share = volume_drop(last.events if last else 0, baseline, float(conf.get("ALERT_TRACKING_DROP")))
    if share is not None:
        mean = sum(baseline) / len(baseline)
        message = (f"Tracking volume fell to {share:.0%} of normal: {last.events if last else 0} events in the hour from "
                   f"{_moment(end_hour - 1):%Y-%m-%d %H:00} UTC against {mean:.0f} in the same hour of previous weeks.")
        raised.append(_system_alert(Alert.Kind.TRACKING, end_hour, mean, last.events if last else 0, message))
    dead = last.dead_letters if last else 0
    if dead >= int(conf.get("ALERT_DEAD_LETTERS_PER_HOUR")):
        message = f"{dead} events were dead-lettered in the hour from {_moment(end_hour - 1):%Y-%m-%d %H:00} UTC (see tl:v1:events:dead)."
        raised.append(_system_alert(Alert.Kind.DEAD_LETTERS, end_hour, 0, dead, message))
    return [alert for alert in raised if alert]


def _system_alert(kind: str, end_hour: int, baseline: float, observed: float, message: str) -> Alert | None:
    since = _moment(end_hour - 1)
    if Alert.objects.filter(kind=kind, key="site", created_at__gte=since - timedelta(hours=6)).exists():
        return None
    alert = Alert.objects.create(kind=kind, key="site", direction="drop" if kind == Alert.Kind.TRACKING else "spike",
                                 since=since, baseline=baseline, observed=observed, message=message, link=report_link())
    notify(alert, {})
    return alert


def notify(alert: Alert, cell: dict[str, Any]) -> None:
    """The alert to the webhooks subscribed to `insights_alert` and to ALERT_EMAILS."""
    payload = {
        "topic": TOPIC, "alert": alert.pk, "kind": alert.kind, "direction": alert.direction, **cell,
        "observed": alert.observed, "baseline": alert.baseline, "p_value": alert.p_value,
        "since": alert.since.isoformat(), "message": alert.message, "link": absolute(alert.link),
    }
    webhooks.enqueue(TOPIC, payload)
    recipients = list(conf.get("ALERT_EMAILS"))
    if recipients:
        subject = f"[Tailored] {alert.get_kind_display()} {alert.direction}"
        try:
            send_mail(subject, f"{alert.message}\n\n{absolute(alert.link)}", None, recipients)
        except Exception:  # a mail server down must not lose the alert: it is in the admin
            logger.exception("alert %s not emailed", alert.pk)


def report_link(since: datetime | None = None, **cell: str) -> str:
    query = {name: value for name, value in cell.items() if value}
    if since is not None:
        query["start"] = (since - timedelta(days=6)).date().isoformat()
    fragment = f"#block-{cell['block']}" if cell.get("block") else ""
    return reverse("tailored_insights:report") + (f"?{urlencode(query)}" if query else "") + fragment


def absolute(link: str) -> str:
    base = getattr(settings, "WAGTAILADMIN_BASE_URL", "") or ""
    return base.rstrip("/") + link


def open_alerts(limit: int = 10) -> Iterable[Alert]:
    return Alert.objects.filter(resolved=False)[:limit]


def _moment(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, tz=UTC)
