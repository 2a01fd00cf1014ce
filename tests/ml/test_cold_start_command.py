"""`manage.py tailored_evaluate --cold-start` on small files in the MSWeb and MovieLens formats:
every model at one, two and three items, on both data sets, with new visitors only."""

from __future__ import annotations

import io
import json

from django.core.management import call_command

from tailored.ml.datasets import load_cold_start
from tailored.ml.evaluation import COLD_START_MODELS
from tests.ml.test_evaluate import write_movielens, write_msweb


def test_cold_start_reports_every_model_at_one_two_and_three_items_on_both_data_sets(tmp_path):
    write_msweb(tmp_path)
    write_movielens(tmp_path)
    output, stdout = tmp_path / "cold.json", io.StringIO()
    call_command("tailored_evaluate", "--cold-start", "--data-dir", str(tmp_path), "--output", str(output), stdout=stdout, stderr=io.StringIO())
    report = json.loads(output.read_text())["cold_start"]
    assert set(report) == {"msweb", "movielens"}
    for data in report.values():
        assert list(data["models"]) == list(COLD_START_MODELS)
        for result in data["models"].values():
            assert all(0.0 <= result[f"n{n}"]["hr@10"] <= 1.0 for n in (1, 2, 3))
    assert "hybrid*" in stdout.getvalue() and "HR@10 n=1" in stdout.getvalue()


def test_cold_start_visitors_are_new_and_asked_after_their_first_items(tmp_path):
    write_movielens(tmp_path)
    data = load_cold_start("movielens", tmp_path, seed=0)
    trained = {event.visitor for event in data.train}
    for length, cases in data.cases.items():
        assert cases and all(case.visitor not in trained and len(case.history) == length for case in cases)
        assert all(not case.held & {item for item, _ in case.history} for case in cases)


def test_a_missing_data_set_is_skipped_with_a_message(tmp_path):
    write_msweb(tmp_path)
    stderr = io.StringIO()
    call_command("tailored_evaluate", "--cold-start", "--data-dir", str(tmp_path), "--output", str(tmp_path / "c.json"), stdout=io.StringIO(), stderr=stderr)
    assert "movielens: skipped" in stderr.getvalue()
