"""`manage.py tailored_train`: train personas, propensity models and the recommender on the
persisted events, publish them to the model registry and score the live profiles (issue 7).

`--synthetic N` first stores N synthetic visitor histories for the demo catalog (and replays
them into the profile store), so the demo has something to learn from, and four weeks of demo
insight counts for the homepage's variants with one seeded anomaly (issue 17); `make demo` runs it.
The work is in tailored.ml.training; this command parses options and reports. It needs the `ml`
extra, and imports it only when it runs (see tailored.management.ml_required)."""

from __future__ import annotations

import time

from django.core.management.base import CommandError

from tailored import conf, redis_guard
from tailored.management.arguments import MAX_DAYS, positive_days, whole
from tailored.management.database import needs_migrated_database
from tailored.management.ml_required import MlCommand

AGAIN = "Run tailored_train again once Redis is back."


class Command(MlCommand):
    ml_task = "tailored_train"
    help = "Train personas, propensity models and the recommender; publish them and score live profiles."

    def add_arguments(self, parser) -> None:
        from tailored.ml.training import STEPS

        parser.add_argument("--synthetic", type=whole(0), default=0, metavar="N", help="first store N synthetic visitors for the demo catalog")
        parser.add_argument("--seed", type=whole(0), default=7, help="random seed (synthetic data and models); default 7")
        parser.add_argument("--since", type=whole(1, "days", MAX_DAYS), default=28, metavar="DAYS",
                            help=f"training window in days, at most {MAX_DAYS}; default 28")
        parser.add_argument("--only", choices=STEPS, help="train one model only")
        parser.add_argument("--if-stale", action="store_true",
                            help="train only when a model is missing or too old, new data piled up, or scores drifted (for cron)")
        parser.add_argument("--max-age-days", type=positive_days, default=7.0, help=f"with --if-stale: retrain models older than this (at most {MAX_DAYS}); default 7")

    @needs_migrated_database
    def handle(self, *args, synthetic: int, seed: int, since: int, only: str | None, **options) -> None:
        from tailored.insights import monitoring

        started = time.perf_counter()
        say = self.stdout.write
        if options.get("if_stale"):
            reason = monitoring.stale_reason(options["max_age_days"], since)
            if reason is None:
                say("the models are fresh: nothing to train")
                return
            say(f"retraining: {reason}")
        if synthetic:
            _check_profile_store()
        report = self._train(synthetic, seed, since, only)
        published = ", ".join(f"{name} {version}" for name, version in report.versions.items()) or "nothing"
        try:
            drifted = monitoring.snapshot()  # today's score distributions; drift alerts (issue 17)
        except redis_guard.OUTAGE as error:
            raise CommandError(f"Redis is unavailable ({error}): published {published}, but today's score "
                               f"distributions were not recorded (no drift check). {AGAIN}") from error
        for alert in drifted:
            say(self.style.WARNING(alert.message))
        self.stdout.write(self.style.SUCCESS(f"published {published} in {time.perf_counter() - started:.1f}s"))

    def _train(self, synthetic: int, seed: int, since: int, only: str | None):
        """tailored.ml.training's report; its refusals and a Redis outage as one-line errors."""
        from tailored.ml.personas import NotEnoughData
        from tailored.ml.training import load_synthetic, train

        say = self.stdout.write
        before = _current_versions()
        try:
            if synthetic:
                load_synthetic(synthetic, seed=seed, days=since, say=say)
                _demo_insights(seed, say)
            return train(since_days=since, seed=seed, only=only, say=say)
        except NotEnoughData as error:
            raise CommandError(str(error)) from None
        except redis_guard.OUTAGE as error:
            # Only the last step (scoring the live profiles) reads the profile store; the models
            # published before it stay published, so say which.
            published = [f"{name} {version}" for name, version in _current_versions().items() if version != before[name]]
            if not published:
                raise CommandError(f"Redis is unavailable ({error}): nothing was published. {AGAIN}") from error
            raise CommandError(f"Redis is unavailable ({error}): the models were published ({', '.join(published)}) "
                               f"but the live profiles were not scored. {AGAIN}") from error


def _current_versions() -> dict[str, str | None]:
    from tailored.ml import registry
    from tailored.ml.training import STEPS  # the registry names of the models, too

    return {name: registry.get_registry().current_version(name) for name in STEPS}


def _check_profile_store() -> None:
    """--synthetic stores its events, then replays them into the profile store; a second run
    skips events already stored. So with Redis down, refuse before storing any: stored but never
    replayed, those visitors would be missing from the live profiles for good."""
    try:
        conf.get_profile_store().recent_visitors(time.time(), 1)
    except redis_guard.OUTAGE as error:
        raise CommandError(f"Redis is unavailable ({error}): --synthetic replays its visitors into the profile "
                           f"store, so nothing was stored or trained. {AGAIN}") from error


def _demo_insights(seed: int, say) -> None:
    """The demo homepage's insight rows and seeded alert (tailored.insights.demo)."""
    from wagtail.models import Site

    from tailored.insights.demo import load_demo_insights

    site = Site.objects.filter(is_default_site=True).first()
    if site is not None:
        load_demo_insights(site.root_page_id, seed=seed, say=say)
