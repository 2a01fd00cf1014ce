"""`manage.py tailored_evaluate` on small files in the MSWeb and MovieLens formats, and once on
the real MSWeb data when it is on this machine."""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tailored.management.commands.tailored_evaluate import default_data_dir
from tailored.ml.catalog import CatalogItem
from tailored.ml.datasets import Dataset, EvalCase, load_msweb
from tailored.ml.evaluation import ModelResult, differences, evaluate

AREAS = {1000 + n: f"Area {n}" for n in range(12)}


def write_msweb(root: Path, seed: int = 5) -> None:
    """Visitors of one of three area groups, each visiting 2-4 areas of their group."""
    rng = random.Random(seed)
    groups = [list(AREAS)[i::3] for i in range(3)]
    header = ['I,4,"www.microsoft.com","created by getlog.pl"']
    header += [f'A,{area},1,"{title}","/{title.lower().replace(" ", "")}"' for area, title in AREAS.items()]
    for name, visitors in (("anonymous-msweb.data", 120), ("anonymous-msweb.test", 30)):
        lines = list(header)
        for visitor in range(visitors):
            lines.append(f'C,"{10000 + visitor}",{10000 + visitor}')
            group = groups[visitor % 3]
            lines += [f"V,{area},1" for area in rng.sample(group, rng.randint(2, 4))]
        (root / "msweb").mkdir(parents=True, exist_ok=True)
        (root / "msweb" / name).write_text("\n".join(lines) + "\n", encoding="latin-1")


def write_movielens(root: Path, seed: int = 5) -> None:
    rng = random.Random(seed)
    folder = root / "ml-latest-small"
    folder.mkdir(parents=True, exist_ok=True)
    genres = ["Comedy", "Drama", "Horror"]
    movies = ["movieId,title,genres"] + [f"{m},Movie {m} (2000),{genres[m % 3]}|Romance" for m in range(1, 31)]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    ratings = ["userId,movieId,rating,timestamp"]
    for user in range(1, 41):
        liked = [m for m in range(1, 31) if m % 3 == user % 3]
        for n, movie in enumerate(rng.sample(liked, 6)):
            ratings.append(f"{user},{movie},{rng.choice([3.0, 4.0, 5.0])},{1_000_000 + n * 100_000 + user}")
    (folder / "ratings.csv").write_text("\n".join(ratings) + "\n")
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,3,funny,1000000\n")


def run(tmp_path: Path, *args: str) -> tuple[dict, str]:
    output = tmp_path / "out.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("tailored_evaluate", *args, "--data-dir", str(tmp_path), "--output", str(output), stdout=stdout, stderr=stderr)
    assert "fitting" in stderr.getvalue()  # progress while it works
    return json.loads(output.read_text()), stdout.getvalue()


def figures(report: dict) -> dict:
    """Everything but the timings, which differ between runs."""
    timing = {"fit_seconds", "score_median_ms", "score_p99_ms"}
    return {
        name: {model: {k: v for k, v in result.items() if k not in timing} for model, result in data["models"].items()}
        for name, data in report["datasets"].items()
    }


def test_msweb_format_reports_every_model_with_baselines(tmp_path):
    write_msweb(tmp_path)
    report, table = run(tmp_path, "--dataset", "msweb", "--models", "ease,hybrid")
    data = report["datasets"]["msweb"]
    assert data["items"] == 12 and data["test_visitors"] == 30
    assert list(data["models"]) == ["popularity", "item-knn", "ease", "hybrid"]  # baselines always run
    for result in data["models"].values():
        for metric in ("hr_at_10", "hr_at_20", "recall_at_10", "ndcg_at_10", "coverage"):
            assert 0.0 <= result[metric] <= 1.0
        assert result["novelty"] >= 0 and result["fit_seconds"] >= 0 and result["score_p99_ms"] >= result["score_median_ms"] >= 0
    # Twelve areas, two to four visits each: the hidden visit is always in the top 10 of 11 or fewer.
    assert data["models"]["item-knn"]["hr_at_10"] == 1.0
    # Groups are perfectly separated, so co-visitation beats popularity at ranking the hidden visit.
    assert data["models"]["item-knn"]["ndcg_at_10"] > data["models"]["popularity"]["ndcg_at_10"]
    assert "HR@10" in table and "NDCG@10" in table and "item-knn" in table
    # The default minus each model, on the same questions, with an interval: in the table and the JSON.
    assert re.search(r"hybrid\* minus each model on the same questions .*\n  popularity +NDCG@10 [+-][\d.]+ \([+-][\d.]+ to [+-][\d.]+\)   HR@10", table)
    gaps = data["default_minus"]
    assert list(gaps) == ["popularity", "item-knn", "ease"]
    ndcg = gaps["popularity"][0]
    assert ndcg["metric"] == "ndcg@10" and ndcg["low"] <= ndcg["mean"] <= ndcg["high"]
    expected = data["models"]["hybrid"]["ndcg_at_10"] - data["models"]["popularity"]["ndcg_at_10"]
    assert ndcg["mean"] == pytest.approx(expected, abs=1e-3)


def test_progress_names_each_model_and_the_time_left(tmp_path):
    write_msweb(tmp_path)
    output = tmp_path / "out.json"
    stderr = io.StringIO()
    call_command("tailored_evaluate", "--dataset", "msweb", "--models", "ease", "--data-dir", str(tmp_path), "--output", str(output), stdout=io.StringIO(), stderr=stderr)
    said = stderr.getvalue()
    assert [f"model {n} of 3: fitting {name}" in said for n, name in ((1, "popularity"), (2, "item-knn"), (3, "ease"))] == [True] * 3
    assert re.search(r"msweb: popularity HR@10 [\d.]+  NDCG@10 [\d.]+; about \d+ s left for 2 more", said)
    assert re.search(r"scoring ease: 30/30 \(100%\), about 0 s left", said)


def test_movielens_format_leave_last_out_and_time_split(tmp_path):
    write_movielens(tmp_path)
    loo, _ = run(tmp_path, "--dataset", "movielens", "--models", "content")
    data = loo["datasets"]["movielens"]
    assert data["protocol"] == "loo" and data["test_visitors"] == 40 and data["items"] == 30
    assert set(data["models"]) == {"popularity", "item-knn", "content"}
    knn, popularity = data["models"]["item-knn"], data["models"]["popularity"]
    assert knn["hr_at_10"] > popularity["hr_at_10"]  # each user likes one genre of three
    timed, _ = run(tmp_path, "--dataset", "movielens", "--protocol", "time", "--models", "popularity")
    assert timed["datasets"]["movielens"]["protocol"] == "time"
    # The cut-off leaves half of the 40 users to test (300 asked for, at most half): the 20 whose
    # last rating is latest, each asked for the one rating they made after it.
    assert timed["datasets"]["movielens"]["test_visitors"] == 20 and timed["datasets"]["movielens"]["questions"] == 20
    assert timed["datasets"]["movielens"]["models"]["item-knn"]["recall_at_20"] > 0


def test_same_seed_same_figures(tmp_path):
    write_msweb(tmp_path)
    write_movielens(tmp_path)
    args = ("--dataset", "msweb", "--models", "hybrid", "--seed", "7")
    assert figures(run(tmp_path, *args)[0]) == figures(run(tmp_path, *args)[0])
    args = ("--dataset", "movielens", "--models", "ease", "--seed", "7")
    assert figures(run(tmp_path, *args)[0]) == figures(run(tmp_path, *args)[0])


def test_missing_files_are_a_clear_command_error(tmp_path):
    with pytest.raises(CommandError, match="anonymous-msweb.data"):
        run(tmp_path, "--dataset", "msweb")
    with pytest.raises(CommandError, match="unknown model"):
        run(tmp_path, "--dataset", "msweb", "--models", "deep-magic")


def test_data_dir_from_the_environment(tmp_path, monkeypatch, settings):
    monkeypatch.setenv("TAILORED_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("TAILORED_DATA_DIR")
    assert default_data_dir() == Path(settings.BASE_DIR).parent / "shared" / "data"


@pytest.mark.django_db
def test_demo_dataset_uses_the_demo_catalog(tmp_path):
    output = tmp_path / "demo.json"
    call_command("tailored_evaluate", "--dataset", "demo", "--models", "hybrid", "--output", str(output), stdout=io.StringIO(), stderr=io.StringIO())
    data = json.loads(output.read_text())["datasets"]["demo"]
    assert data["test_visitors"] > 100
    assert data["models"]["hybrid"]["hr_at_10"] > data["models"]["popularity"]["hr_at_10"] + 0.2




@pytest.mark.skipif(
    not (default_data_dir() / "msweb" / "anonymous-msweb.data").is_file(),
    reason="the MSWeb data is not on this machine (<BASE_DIR>/../shared/data or $TAILORED_DATA_DIR)",
)
def test_real_msweb_meets_the_targets():
    dataset = load_msweb(default_data_dir(), seed=0)
    results = {result.model: result for result in evaluate(dataset, ["ease"], seed=0)}
    best = max(results.values(), key=lambda result: result.ndcg_at_10)
    assert best.hr_at_10 >= 0.77 and best.ndcg_at_10 >= 0.56, best
    assert results["item-knn"].hr_at_10 > results["popularity"].hr_at_10


def test_the_protocol_fails_when_a_model_recommends_from_the_visitors_history():
    from tailored.ml.datasets import EvalCase
    from tailored.ml.evaluation import SeenItemRecommended, assert_nothing_seen

    cases = [EvalCase("v1", (("a", 1.0), ("b", 0.0)), frozenset({"c"}), 1.0), EvalCase("v2", (("c", 1.0),), frozenset({"a"}), 1.0)]
    assert_nothing_seen("ok", [["c", "d"], ["a", "b"]], cases)
    with pytest.raises(SeenItemRecommended, match="to 1 visitors"):
        assert_nothing_seen("bad", [["c", "b"], ["a"]], cases)


def test_all_runs_every_shared_data_set_under_both_protocols_with_the_default_marked(tmp_path, monkeypatch):
    from tailored.management.commands import tailored_evaluate

    write_msweb(tmp_path)
    write_movielens(tmp_path)
    monkeypatch.setattr(tailored_evaluate, "ALL_RUNS", tailored_evaluate.ALL_RUNS[:-1])  # the demo has its own test
    report, table = run(tmp_path, "--dataset", "all", "--models", "als,rp3beta,hybrid")
    assert list(report["datasets"]) == ["msweb/hide-one", "msweb/last", "movielens/loo", "movielens/time"]
    for data in report["datasets"].values():
        assert list(data["models"]) == ["popularity", "item-knn", "als", "rp3beta", "hybrid"]
    assert len(re.findall(r"^hybrid\* +[\d.]+ ", table, re.M)) == 4 and table.count("* hybrid: the default configuration") == 4
    assert table.count("hybrid* minus each model on the same questions") == 4
    assert "msweb (last;" in table and "movielens (time;" in table


def test_the_time_split_tests_enough_visitors_with_several_next_item_questions_each():
    from tailored.ml import datasets
    from tailored.ml.recommender import Interaction

    # 1,000 visitors who each rate 12 films within a minute, on days spread over ten years: a
    # cut-off at a quantile of times would find almost no visitor with ratings on both sides.
    day = 86400.0
    events = [
        Interaction(f"u{u}", f"m{(u * 7 + n * 3) % 50}", "view", 1e9 + u * 3.65 * day + n)
        for u in range(1000) for n in range(12)
    ]
    train, cases, cutoff = datasets.time_split(events, seed=0)
    asked = {case.visitor for case in cases}
    assert len(asked) == 300  # a fifth of 1,000 is below TIME_SPLIT_MIN_TEST_VISITORS
    assert all(event.ts < cutoff for event in train)  # nothing after the cut-off is fitted
    # Their latest ten new films each; the cut-off is the 300th visitor's last rating, their only question.
    assert len(cases) == 299 * datasets.TIME_SPLIT_QUESTIONS + 1
    for case in cases:
        history = {item for item, _ in case.history}
        assert not case.held & history and len(history) >= 2  # asked with all they rated before it
        assert case.now == max(ts for _, ts in case.history)  # asked right after their last rating before it


def result(model: str, hits: list[float]) -> ModelResult:
    figures = dict.fromkeys(("hr_at_10", "hr_at_20", "recall_at_10", "recall_at_20", "ndcg_at_10", "coverage", "novelty",
                             "fit_seconds", "score_median_ms", "score_p99_ms"), 0.0)
    return ModelResult(model=model, **figures, cases=len(hits), chosen={}, per_case={"hr@10": tuple(hits), "ndcg@10": tuple(hits)})


def test_the_defaults_gap_to_each_model_has_an_interval_that_excludes_zero_only_when_the_data_can_tell():
    cases = [EvalCase(f"v{n}", (), frozenset({"x"}), 0.0) for n in range(200)]
    better = differences([result("hybrid", [1.0] * 200), result("popularity", [0.0] * 200)], cases)
    assert [(d.model, d.metric, d.mean, d.low, d.high) for d in better] == [
        ("popularity", "ndcg@10", 1.0, 1.0, 1.0), ("popularity", "hr@10", 1.0, 1.0, 1.0)]
    # Half the questions each way, on different visitors: a gap of 0, and an interval across it.
    mixed = differences([result("hybrid", [1.0, 0.0] * 100), result("item-knn", [0.0, 1.0] * 100)], cases)
    assert mixed[0].mean == 0.0 and mixed[0].low < -0.1 and mixed[0].high > 0.1


def test_a_visitors_questions_are_resampled_together():
    """One visitor asked ten questions, all won by the default, among ten visitors with one tie
    each: the gap is 0.5 a question, and since a resample leaves that one visitor out about a
    third of the time, the interval reaches 0 (resampling questions alone would never)."""
    cases = [EvalCase("heavy", (), frozenset({"x"}), 0.0)] * 10 + [EvalCase(f"v{n}", (), frozenset({"x"}), 0.0) for n in range(10)]
    gaps = differences([result("hybrid", [1.0] * 10 + [0.0] * 10), result("item-knn", [0.0] * 20)], cases)
    assert gaps[0].mean == 0.5 and gaps[0].low == 0.0 and gaps[0].high > 0.7


def test_negatives_rank_each_held_out_item_against_items_sampled_from_what_the_visitor_never_touched(tmp_path):
    write_movielens(tmp_path)
    output, stdout, stderr = tmp_path / "out.json", io.StringIO(), io.StringIO()
    call_command("tailored_evaluate", "--dataset", "movielens", "--models", "ease", "--negatives", "9", "--data-dir", str(tmp_path),
                 "--output", str(output), stdout=stdout, stderr=stderr)
    report, table = json.loads(output.read_text()), stdout.getvalue()
    assert re.search(r"ranking ease against 9 sampled items: 40/40 \(100%\)", stderr.getvalue())  # the second pass says how far it is
    data = report["datasets"]["movielens"]
    assert data["negatives"] == 9 and "each held-out item ranked against 9 sampled items" in table
    knn, popularity = data["models"]["item-knn"], data["models"]["popularity"]
    # Ten candidates a question: every held-out item is in the top 10, and the order is what tells.
    assert knn["hr_at_10"] == popularity["hr_at_10"] == 1.0
    # Each user rates one genre of three: co-ratings rank the held-out film above most of the
    # sampled ones (two in three of another genre), popularity hardly.
    assert knn["ndcg_at_10"] > popularity["ndcg_at_10"] + 0.1
    assert knn["coverage"] > 0  # coverage and novelty still describe the top-10 lists shown


def test_sampled_items_avoid_what_the_visitor_touched_and_repeat_for_a_seed():
    from tailored.ml.evaluation import sample_negatives

    items = tuple(CatalogItem(id=str(n), title="", category="") for n in range(200))
    cases = (EvalCase("a", (("1", 0.0), ("2", 0.0)), frozenset({"3"}), 0.0), EvalCase("b", tuple((str(n), 0.0) for n in range(150)), frozenset({"199"}), 0.0))
    dataset = Dataset("d", "loo", items, (), cases, 0.0)
    drawn = sample_negatives(dataset, 99, seed=4)
    assert [len(d) for d in drawn] == [99, 49]  # b touched 151 of 200: the 49 left
    assert not set(drawn[0]) & {"1", "2", "3"} and not set(drawn[1]) & {*map(str, range(150)), "199"}
    assert len(set(drawn[0])) == 99 and drawn == sample_negatives(dataset, 99, seed=4) != sample_negatives(dataset, 99, seed=5)


def test_a_held_out_item_the_model_does_not_rank_comes_after_every_sampled_item():
    from tailored.ml.evaluation import sampled_lists

    class RanksOnlyB:
        def recommend(self, history, k, now=None):
            return [("b", 1.0)]

    lists = sampled_lists(RanksOnlyB(), [EvalCase("v", (), frozenset({"held"}), 0.0)], [("a", "b", "c")], 4)
    assert lists == [["b", "a", "c", "held"]]


def test_negatives_must_be_a_whole_number(tmp_path):
    write_movielens(tmp_path)
    with pytest.raises(CommandError, match="must be a whole number of items"):
        call_command("tailored_evaluate", "--dataset", "movielens", "--negatives", "-3", "--data-dir", str(tmp_path))
