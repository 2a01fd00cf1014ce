"""Model monitoring (issue 17 item 5): each day's persona and propensity score distributions, a
drift alert when one shifts (population stability index against the previous recorded day above
DRIFT_PSI_THRESHOLD) or when the recommender's current version's CTR falls against the previous
version's (`model_ctr_alert`, checked by the worker's hourly insights turn), and when
`tailored_train --if-stale` should retrain.

Distributions are read from the live profiles (the scores the models wrote), a bounded sample of
the visitors active in the last week; scores in ten bins of [0, 1], personas as their shares."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import Max, Min, Sum
from django.utils import timezone

from tailored import conf
from tailored.core.insights import (
    VersionCounts,
    histogram,
    model_ctr_drop,
    population_stability_index,
)
from tailored.models import Alert, Event, InsightHour, ScoreDay

from .labels import MODEL_PREFIX

SAMPLE = 20_000
PERSONA = "persona"


def distributions(now: float, sample: int = SAMPLE) -> dict[str, list[tuple[str, int]]]:
    """name -> [(bin label, count)] over the live profiles of the last week."""
    store = conf.get_profile_store()
    visitors = store.recent_visitors(now - 7 * 86400, sample)
    scores: dict[str, list[float]] = defaultdict(list)
    personas: Counter = Counter()
    for start in range(0, len(visitors), 500):
        for profile in store.get_many(visitors[start : start + 500], now).values():
            if profile.persona:
                personas[profile.persona] += 1
            for name, value in profile.scores.items():
                scores[name].append(float(value))
    found = {name: [(f"{i / 10:.1f}", n) for i, n in enumerate(histogram(values))] for name, values in scores.items()}
    if personas:
        found[PERSONA] = sorted(personas.items())
    return found


def snapshot(now: float | None = None) -> list[Alert]:
    """Record today's distributions (replacing today's earlier snapshot) and raise a drift alert
    for each that moved against the previous recorded day. Returns the alerts raised."""
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, tz=UTC).date()
    raised = []
    for name, bins in distributions(now).items():
        version = current_version(PERSONA + "s" if name == PERSONA else "propensity")
        ScoreDay.objects.update_or_create(name=name, day=today, defaults={"bins": bins, "model_version": version or ""})
        previous = ScoreDay.objects.filter(name=name, day__lt=today).order_by("-day").first()
        if previous is not None and (alert := drift_alert(name, previous, bins, now)):
            raised.append(alert)
    return raised


def drift_alert(name: str, previous: ScoreDay, bins: list[tuple[str, int]], now: float) -> Alert | None:
    labels = sorted({label for label, _ in previous.bins} | {label for label, _ in bins})
    before, after = dict(previous.bins), dict(bins)
    psi = population_stability_index([before.get(x, 0) for x in labels], [after.get(x, 0) for x in labels])
    threshold = float(conf.get("DRIFT_PSI_THRESHOLD"))
    if psi <= threshold:
        return None
    moment = datetime.fromtimestamp(now, tz=UTC)
    if Alert.objects.filter(kind=Alert.Kind.DRIFT, key=f"score|{name}", created_at__gte=moment - timedelta(days=1)).exists():
        return None
    from .alerts import notify, report_link

    message = (f"The {name} distribution shifted: population stability index {psi:.2f} against {previous.day:%d %b} "
               f"(the threshold is {threshold}). Check the model and the traffic before trusting its segments.")
    alert = Alert.objects.create(kind=Alert.Kind.DRIFT, key=f"score|{name}", direction="shift", since=moment,
                                 baseline=threshold, observed=psi, message=message, link=report_link() + "#models")
    notify(alert, {"score": name})
    return alert


RECOMMENDER = "recommender"


def model_ctr_alert(end_hour: int) -> Alert | None:
    """A drift alert when the recommender's current version's CTR is significantly below the
    previous version's (tailored.core.insights.model_ctr_drop), over the hourly rows before
    `end_hour` (epoch hours) still kept: every recommendation block, device and country."""
    counts, first_seen = version_counts(end_hour)
    current = current_version(RECOMMENDER) or max(counts, default=None)
    # Versions are UTC timestamps (tailored.ml.registry): the previous one sorts just before.
    previous = max((version for version in counts if current and version < current), default=None)
    if current not in counts or previous is None:
        return None
    finding = model_ctr_drop(
        counts[previous], counts[current], alpha=float(conf.get("MODEL_CTR_ALPHA")),
        min_impressions=int(conf.get("MODEL_CTR_MIN_IMPRESSIONS")),
        min_expected=float(conf.get("ALERT_MIN_EXPECTED")), min_change=float(conf.get("ALERT_MIN_CHANGE")),
    )
    if finding is None:
        return None
    key = f"model|{finding.key}"
    since = first_seen[current]
    if Alert.objects.filter(kind=Alert.Kind.MODEL_CTR, key=key, created_at__gte=timezone.now() - timedelta(days=1)).exists():
        return None  # one alert a day while the drop lasts, as for the other cells
    from .alerts import notify, report_link

    message = (
        f"Recommendation CTR of model {current} dropped {1 - finding.observed / finding.baseline:.0%}: "
        f"{finding.observed:.2%} over {counts[current].impressions:,} impressions against {finding.baseline:.2%} over "
        f"{counts[previous].impressions:,} for the previous version {previous}, since {since:%Y-%m-%d %H:00} UTC. "
        "Retrain or publish the previous version again."
    )
    alert = Alert.objects.create(
        kind=Alert.Kind.MODEL_CTR, key=key, direction="drop", since=since, baseline=finding.baseline,
        observed=finding.observed, p_value=finding.p_value, message=message, link=report_link(since=since) + "#models",
    )
    notify(alert, {"model": current, "previous_model": previous})
    return alert


def version_counts(end_hour: int) -> tuple[dict[str, VersionCounts], dict[str, datetime]]:
    """Each model version's recommendation impressions and clicks in the hourly rows kept before
    `end_hour`, and the first hour it was seen (one grouped query over every-visitor rows)."""
    since = datetime.fromtimestamp((end_hour - 24 * int(conf.get("INSIGHTS_HOURLY_DAYS"))) * 3600, tz=UTC)
    rows = (
        InsightHour.objects.filter(
            segment="", variant__startswith=MODEL_PREFIX, hour__gte=since, hour__lt=datetime.fromtimestamp(end_hour * 3600, tz=UTC),
        )
        .values("variant").annotate(impressions=Sum("impressions"), clicks=Sum("clicks"), first=Min("hour")).order_by()
    )
    counts, first_seen = {}, {}
    for row in rows:
        version = row["variant"].removeprefix(MODEL_PREFIX)
        counts[version] = VersionCounts(version, row["impressions"] or 0, row["clicks"] or 0)
        first_seen[version] = row["first"]
    return counts, first_seen


def current_version(name: str) -> str | None:
    from tailored.ml import registry

    return registry.get_registry().current_version(name)


def trained_at(name: str) -> datetime | None:
    """When the current version of a model was published (its metadata), or None."""
    from tailored.ml import registry

    found = registry.get_registry()
    version = found.current_version(name)
    if version is None:
        return None
    try:
        created = json.loads((found.root / name / version / registry.METADATA).read_text())["created_at"]
        return datetime.fromisoformat(created)
    except (OSError, KeyError, ValueError):
        return None


def stale_reason(max_age_days: float, since_days: int, now: datetime | None = None) -> str | None:
    """Why the models should be retrained now, or None when they are fresh: a model missing, older
    than `max_age_days`, new events amounting to a fifth of the training window's since the last
    training, or a drift or recommendation CTR alert raised since."""
    now = now or timezone.now()
    times = {name: trained_at(name) for name in ("personas", "propensity", "recommender")}
    missing = [name for name, at in times.items() if at is None]
    if missing:
        return f"no trained {', '.join(missing)} model"
    oldest = min(at for at in times.values() if at is not None)
    if now - oldest > timedelta(days=max_age_days):
        return f"the oldest model is {(now - oldest).days} days old (more than {max_age_days:g})"
    window = Event.objects.filter(ts__gte=now - timedelta(days=since_days), ts__lt=oldest).count()
    fresh = Event.objects.filter(ts__gte=oldest).count()
    if fresh and fresh >= 0.2 * max(window, 1):
        return f"{fresh} events since the last training (the window before it had {window})"
    drift = Alert.objects.filter(kind=Alert.Kind.DRIFT, created_at__gte=oldest).aggregate(at=Max("created_at"))["at"]
    if drift is not None:
        return f"score drift was detected on {drift:%d %b %H:%M}"
    # The recommender's new version doing worse than the one before: retrain on fresher data.
    dropped = Alert.objects.filter(kind=Alert.Kind.MODEL_CTR, created_at__gte=oldest).aggregate(at=Max("created_at"))["at"]
    if dropped is not None:
        return f"the recommender's CTR fell against its previous version on {dropped:%d %b %H:%M}"
    return None
