"""Offline evaluation of the recommenders on MSWeb, MovieLens (ml-latest-small) and the demo shop.

    python manage.py tailored_evaluate --dataset all --output evaluation.json

Data files are read from --data-dir, else $TAILORED_DATA_DIR, else <BASE_DIR>/../shared/data.
Popularity and item-kNN run in every evaluation, for comparison. Needs the `ml` extra, imported
only when the command runs (see tailored.management.ml_required).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from tailored.management.arguments import whole
from tailored.management.database import needs_migrated_database
from tailored.management.ml_required import MlCommand

if TYPE_CHECKING:
    from tailored.ml import datasets

DATASETS = ("msweb", "movielens", "demo")
# --dataset all: every shared data set under its published protocol and an order-based one
# (MSWeb: the last visit its file lists; MovieLens: a time split), then the demo shop.
ALL_RUNS = (("msweb", "hide-one"), ("msweb", "last"), ("movielens", "loo"), ("movielens", "time"), ("demo", "loo"))


def default_data_dir() -> Path:
    configured = os.environ.get("TAILORED_DATA_DIR")
    return Path(configured) if configured else Path(settings.BASE_DIR).parent / "shared" / "data"


class Command(MlCommand):
    ml_task = "tailored_evaluate"
    help = "Evaluate the recommenders offline (HR@10/20, NDCG@10, coverage, novelty, fit and scoring time)."

    def add_arguments(self, parser: CommandParser) -> None:
        from tailored.ml.evaluation import MODELS
        from tailored.ml.recommender import RecommenderParams

        parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
        parser.add_argument("--data-dir", type=Path, default=None, help="default: $TAILORED_DATA_DIR or <BASE_DIR>/../shared/data")
        parser.add_argument("--output", type=Path, default=Path("evaluation.json"), help="JSON results (default: evaluation.json in the current directory)")
        parser.add_argument("--protocol", choices=("loo", "time"), default="loo",
                            help="movielens and demo: leave-last-out or a time split; msweb: hide one visit at random, or (time) the last one listed. --dataset all runs both")
        parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated among {', '.join(MODELS)}; popularity and item-knn always run")
        parser.add_argument("--seed", type=_seed, default=0)
        parser.add_argument("--negatives", type=_count, default=0,
                            help="rank each held-out item against this many sampled items the visitor never touched (99 in the literature's tables) instead of every item")
        parser.add_argument("--cold-start", action="store_true",
                            help="visitors with 1, 2 and 3 items only: HR@10 and NDCG@10 per model on msweb and movielens (issue 22 item 5)")
        parser.add_argument("--neighbours", type=_items, default=RecommenderParams.neighbours, help="neighbours kept per item")
        parser.add_argument("--ease-max-items", type=_items, default=RecommenderParams.ease_max_items, help="EASE is fitted over this many most popular items (cubic cost)")
        parser.add_argument("--validation-visitors", type=_visitors, default=RecommenderParams.validation_visitors, help="visitors held out of training data for tuning")

    @needs_migrated_database
    def handle(self, *args, **options) -> None:
        from tailored.ml.evaluation import (
            MODELS,
            count_test_visitors,
            differences,
            evaluate,
            format_differences,
            format_table,
        )
        from tailored.ml.recommender import RecommenderParams

        models = [name.strip() for name in options["models"].split(",") if name.strip()]
        unknown = sorted(set(models) - set(MODELS))
        if unknown:
            raise CommandError(f"unknown model(s) {', '.join(unknown)}; choose among {', '.join(MODELS)}")
        data_dir = options["data_dir"] or default_data_dir()
        _check_writable(options["output"])  # before the evaluation, which can take an hour
        if options["cold_start"]:
            self._cold_start(options["dataset"], data_dir, options)
            return
        runs = ALL_RUNS if options["dataset"] == "all" else ((options["dataset"], options["protocol"]),)
        params = replace(
            RecommenderParams(),
            neighbours=options["neighbours"],
            ease_max_items=options["ease_max_items"],
            validation_visitors=options["validation_visitors"],
        )
        report: dict[str, object] = {"seed": options["seed"], "machine": _machine(), "datasets": {}}
        for name, protocol in runs:
            dataset = self._load(name, data_dir, protocol, options["seed"])
            results = evaluate(dataset, models, seed=options["seed"], params=params, progress=self._progress, negatives=options["negatives"])
            gaps = differences(results, dataset.cases, seed=options["seed"])
            table = format_table(dataset, results, options["negatives"])
            self.stdout.write("\n" + table + "\n" + (format_differences(gaps) + "\n" if gaps else ""))
            report["datasets"][f"{name}/{dataset.protocol}" if len(runs) > 1 else name] = {
                "protocol": dataset.protocol,
                "test_visitors": count_test_visitors(dataset.cases),
                "questions": len(dataset.cases),  # the time split asks each test visitor several
                "negatives": options["negatives"],  # 0: every item ranked
                "items": len(dataset.catalog),
                "train_interactions": len(dataset.train),
                "models": {result.model: result.as_dict() for result in results},
                "default_minus": {model: [d.as_dict() for d in gaps if d.model == model] for model in dict.fromkeys(d.model for d in gaps)},
            }
            # Written after every data set: a later failure keeps the figures already measured.
            options["output"].write_text(json.dumps(report, indent=2, default=str) + "\n")
        self.stdout.write(f"wrote {options['output']}")

    def _cold_start(self, dataset: str, data_dir: Path, options: dict) -> None:
        """Every shared data set that loads (--dataset msweb or movielens: that one)."""
        from tailored.ml import datasets
        from tailored.ml.evaluation import evaluate_cold_start, format_cold_start
        from tailored.ml.recommender import RecommenderParams

        names = [dataset] if dataset in ("msweb", "movielens") else ["msweb", "movielens"]
        params = replace(RecommenderParams(), neighbours=options["neighbours"], validation_visitors=options["validation_visitors"])
        report: dict[str, object] = {"seed": options["seed"], "machine": _machine(), "cold_start": {}}
        for name in names:
            try:
                data = datasets.load_cold_start(name, data_dir, seed=options["seed"])
            except datasets.MissingDataError as error:
                self.stderr.write(f"{name}: skipped, {error} (looked in {data_dir})")
                continue
            results = evaluate_cold_start(data, seed=options["seed"], params=params, progress=self._progress)
            self.stdout.write("\n" + format_cold_start(data, results) + "\n")
            report["cold_start"][name] = {
                "protocol": data.protocol,
                "models": {r.model: {"fit_seconds": round(r.fit_seconds, 1), "weights": r.weights,
                                     **{f"n{n}": {"hr@10": round(hr, 4), "ndcg@10": round(nd, 4)} for n, (hr, nd) in r.figures.items()}}
                           for r in results},
            }
            options["output"].write_text(json.dumps(report, indent=2, default=str) + "\n")
        if not report["cold_start"]:
            raise CommandError(f"every data set was skipped: nothing was written (looked in {data_dir}; set --data-dir or TAILORED_DATA_DIR)")
        self.stdout.write(f"wrote {options['output']}")

    def _load(self, name: str, data_dir: Path, protocol: str, seed: int) -> datasets.Dataset:
        from tailored.ml import datasets

        self._progress(f"loading {name}")
        try:
            if name == "msweb":
                return datasets.load_msweb(data_dir, seed=seed, protocol="last" if protocol in ("time", "last") else "hide-one")
            if name == "movielens":
                return datasets.load_movielens(data_dir, protocol=protocol, seed=seed)
            return datasets.load_demo(protocol=protocol, seed=seed)
        except datasets.MissingDataError as error:
            hint = "" if name == "demo" else f" (looked in {data_dir}; set --data-dir or TAILORED_DATA_DIR)"
            raise CommandError(f"{name}: {error}{hint}") from error
        except DatabaseError as error:  # the demo reads the product pages
            raise CommandError(f"{name}: cannot read the demo catalog ({error}); run `manage.py migrate` and `manage.py load_demo`") from error

    def _progress(self, message: str) -> None:
        self.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}")


_count = whole(0, "items")
_seed = whole(0)  # numpy's generators refuse a negative seed
_items = whole(1, "items")
_visitors = whole(1, "visitors")


def _check_writable(output: Path) -> None:
    """Refuse an output the results could not be written to, before any evaluation runs."""
    folder = output.parent
    if output.is_dir():
        raise CommandError(f"cannot write the results: {output} is a folder (name a file with --output)")
    if not folder.is_dir():
        raise CommandError(f"cannot write the results: the folder {folder} does not exist (create it, or choose another --output)")
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise CommandError(f"cannot write the results: {output} is not writable (choose another --output)")


def _machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
