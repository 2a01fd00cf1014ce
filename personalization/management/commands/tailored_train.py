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

from tailored.management.ml_required import MlCommand


class Command(MlCommand):
    ml_task = "tailored_train"
    help = "Train personas, propensity models and the recommender; publish them and score live profiles."

    def add_arguments(self, parser) -> None:
        from tailored.ml.training import STEPS

        parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="first store N synthetic visitors for the demo catalog")
        parser.add_argument("--seed", type=int, default=7, help="random seed (synthetic data and models); default 7")
        parser.add_argument("--since", type=int, default=28, metavar="DAYS", help="training window in days; default 28")
        parser.add_argument("--only", choices=STEPS, help="train one model only")
        parser.add_argument("--if-stale", action="store_true",
                            help="train only when a model is missing or too old, new data piled up, or scores drifted (for cron)")
        parser.add_argument("--max-age-days", type=float, default=7.0, help="with --if-stale: retrain models older than this; default 7")

    def handle(self, *args, synthetic: int, seed: int, since: int, only: str | None, **options) -> None:
        from tailored.insights import monitoring
        from tailored.ml.personas import NotEnoughData
        from tailored.ml.training import load_synthetic, train

        started = time.perf_counter()
        say = self.stdout.write
        if options.get("if_stale"):
            reason = monitoring.stale_reason(options["max_age_days"], since)
            if reason is None:
                say("the models are fresh: nothing to train")
                return
            say(f"retraining: {reason}")
        try:
            if synthetic:
                load_synthetic(synthetic, seed=seed, days=since, say=say)
                _demo_insights(seed, say)
            report = train(since_days=since, seed=seed, only=only, say=say)
        except NotEnoughData as error:
            raise CommandError(str(error)) from None
        drifted = monitoring.snapshot()  # today's score distributions; drift alerts (issue 17)
        for alert in drifted:
            say(self.style.WARNING(alert.message))
        published = ", ".join(f"{name} {version}" for name, version in report.versions.items()) or "nothing"
        self.stdout.write(self.style.SUCCESS(f"published {published} in {time.perf_counter() - started:.1f}s"))


def _demo_insights(seed: int, say) -> None:
    """The demo homepage's insight rows and seeded alert (tailored.insights.demo)."""
    from wagtail.models import Site

    from tailored.insights.demo import load_demo_insights

    site = Site.objects.filter(is_default_site=True).first()
    if site is not None:
        load_demo_insights(site.root_page_id, seed=seed, say=say)
