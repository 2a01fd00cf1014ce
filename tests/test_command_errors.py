"""Management commands answer bad arguments, unreadable files and an unreachable Redis with one
clear line (a CommandError: `manage.py` prints it and exits 1), never a traceback; and a command
that stops says what it did and did not do."""

from __future__ import annotations

import io
import signal

import pytest
from django.core.management import CommandError, call_command

from cms.models import HomePage, LandingPage
from tailored.activation.models import VisitorTraits
from tailored.experiments.models import AllocationChange, Experiment
from tailored.models import Event as EventRow
from tests.experiments.conftest import make_experiment
from tests.experiments.test_rendering import EXPERIMENT_SECTION
from tests.helpers import experiment_cache_cleared
from tests.ml.test_evaluate import write_movielens
from tests.traits.conftest import declared  # noqa: F401 (the traits fixture, used by name)

pytestmark = pytest.mark.django_db
ALICE = "a" * 32
NOBODY_LISTENS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused at once

fresh_experiment_cache = pytest.fixture(name="fresh_experiment_cache")(experiment_cache_cleared)


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def redis_down(settings, tmp_path):
    """The Redis profile store at an address where nothing answers (models in a fresh folder)."""
    settings.PERSONALIZATION = {
        "PRODUCT_MODEL": "cms.ProductPage",
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": NOBODY_LISTENS,
        "REDIS_SOCKET_TIMEOUT_SECONDS": 0.2,
        "MODEL_DIR": str(tmp_path / "models"),
        "MODEL_RELOAD_SECONDS": 0,
    }


@pytest.fixture
def signals_restored():
    """The worker command installs SIGTERM/SIGINT handlers: give the test process its own back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


# tailored_import_traits ------------------------------------------------------------------------


def test_a_csv_that_is_not_utf8_is_refused_naming_its_line(tmp_path, declared):  # noqa: F811
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"visitor_id,account_type\n" + ALICE.encode() + b",caf\xe9\n")
    with pytest.raises(CommandError, match=r"^line 2: the file is not UTF-8 text \(save it as UTF-8\)$"):
        run("tailored_import_traits", str(path))
    assert not VisitorTraits.objects.exists()


def test_a_cell_over_the_csv_field_limit_is_refused_naming_its_line(tmp_path, declared):  # noqa: F811
    path = tmp_path / "huge.csv"
    path.write_text(f"visitor_id,account_type\n{'b' * 32},business\n{ALICE},{'x' * 131_073}\n")
    with pytest.raises(CommandError, match=r"^line 3: a cell is longer than 131072 characters$"):
        run("tailored_import_traits", str(path))
    assert not VisitorTraits.objects.exists()


# tailored_worker -------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [
    ("--batch", "0"), ("--batch", "-1"), ("--claim-idle-seconds", "-1"), ("--claim-idle-seconds", "nan"), ("--block-ms", "-1"),
])
def test_the_worker_refuses_numbers_it_cannot_loop_with(settings, option, value):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "REDIS_URL": NOBODY_LISTENS}
    with pytest.raises(CommandError, match=f"^{option} must be"):
        run("tailored_worker", "--once", option, value)


def test_one_worker_turn_with_redis_unreachable_is_one_line(redis_down, signals_restored):
    with pytest.raises(CommandError, match=r"^Redis is unavailable \(.*\): run the worker again once Redis answers$"):
        run("tailored_worker", "--once", "--block-ms", "0")


# tailored_train --------------------------------------------------------------------------------


def test_training_with_redis_down_publishes_the_models_and_says_live_profiles_were_not_scored(settings, redis_down, tmp_path):
    from tailored.ml import registry
    from tailored.ml.training import PERSONAS, load_synthetic

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore"}
    load_synthetic(60, seed=3, days=7, say=lambda _: None)  # the events to train on, in the database
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore"}
    with pytest.raises(CommandError, match=r"^Redis is unavailable \(.*\): the models were published \(personas \S+\) but the live profiles were not scored\. Run tailored_train again"):
        run("tailored_train", "--only", "personas", "--since", "7")
    assert registry.load(PERSONAS) is not None


def test_training_only_the_recommender_with_redis_down_says_no_drift_check_was_made(settings, redis_down):
    from tailored.ml.training import load_synthetic

    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore"}
    load_synthetic(60, seed=3, days=7, say=lambda _: None)
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore"}
    with pytest.raises(CommandError, match=r"^Redis is unavailable \(.*\): published .*, but today's score distributions were not recorded"):
        run("tailored_train", "--only", "recommender", "--since", "7")


def test_synthetic_visitors_are_not_stored_while_redis_is_down(redis_down):
    before = EventRow.objects.count()
    with pytest.raises(CommandError, match=r"^Redis is unavailable.*nothing was stored or trained"):
        run("tailored_train", "--synthetic", "20")
    assert EventRow.objects.count() == before  # stored but never replayed, a run again would skip them


@pytest.mark.parametrize(("option", "value"), [("--synthetic", "-1"), ("--seed", "-1"), ("--since", "0"), ("--max-age-days", "-2")])
def test_training_refuses_numbers_out_of_range(settings, tmp_path, option, value):
    settings.PERSONALIZATION = {**settings.PERSONALIZATION, "MODEL_DIR": str(tmp_path / "models")}
    with pytest.raises(CommandError, match=f"argument {option}: must be"):
        run("tailored_train", option, value)


# tailored_reallocate ---------------------------------------------------------------------------


def test_reallocating_with_redis_down_changes_no_weights(redis_down, fresh_experiment_cache):
    page = LandingPage(title="CTA test", slug="cta-bandit", body=[EXPERIMENT_SECTION])
    HomePage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    bandit = make_experiment(
        page=page, key="cta-test", target=Experiment.Target.BLOCK, arms=[("control", 50, {}), ("bold", 50, {})],
        allocation=Experiment.Allocation.THOMPSON, reallocate_every_minutes=60,
    )
    with pytest.raises(CommandError, match=r"^Redis is unavailable \(.*\); no weights were changed$"):
        run("tailored_reallocate")
    assert not AllocationChange.objects.filter(experiment=bandit).exists()
    assert [arm.weight for arm in Experiment.objects.get(pk=bandit.pk).arms.all()] == [50, 50]


# tailored_evaluate -----------------------------------------------------------------------------


def test_an_output_in_a_missing_folder_is_refused_before_evaluating(tmp_path):
    write_movielens(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="cannot write the results: the folder .* does not exist"):
        call_command("tailored_evaluate", "--dataset", "movielens", "--data-dir", str(tmp_path),
                     "--output", str(tmp_path / "no" / "such" / "x.json"), stdout=out, stderr=err)
    assert "loading" not in err.getvalue()  # refused before any data set was read


def test_an_output_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(CommandError, match="cannot write the results: .* is a folder"):
        run("tailored_evaluate", "--dataset", "movielens", "--data-dir", str(tmp_path), "--output", str(tmp_path))


def test_cold_start_with_every_data_set_missing_writes_nothing_and_fails(tmp_path):
    output, out, err = tmp_path / "cold.json", io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="every data set was skipped: nothing was written"):
        call_command("tailored_evaluate", "--cold-start", "--data-dir", str(tmp_path), "--output", str(output), stdout=out, stderr=err)
    assert not output.exists() and "wrote" not in out.getvalue()
    assert "msweb: skipped" in err.getvalue() and "movielens: skipped" in err.getvalue()


@pytest.mark.parametrize(("option", "value"), [
    ("--validation-visitors", "-1"), ("--validation-visitors", "0"), ("--neighbours", "0"), ("--ease-max-items", "-5"), ("--seed", "-1"),
])
def test_evaluation_numbers_are_checked_before_anything_runs(tmp_path, option, value):
    with pytest.raises(CommandError, match=f"argument {option}: must be a whole number"):
        run("tailored_evaluate", "--dataset", "movielens", "--data-dir", str(tmp_path), "--output", str(tmp_path / "x.json"), option, value)



@pytest.mark.parametrize(
    ("command", "args", "model"),
    [
        ("tailored_api_key", ["list"], "tailored.ApiKey"),
        ("tailored_purge", [], "tailored.Event"),
        ("tailored_reallocate", [], "tailored_experiments.AllocationChange"),
    ],
)
def test_a_database_not_migrated_gets_one_line_naming_migrate(command, args, model):
    """The table a command reads first is missing (a database never migrated, or behind)."""
    from django.apps import apps
    from django.db import connection

    with connection.cursor() as cursor:  # a table nothing refers to; rolled back with the test
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(apps.get_model(model)._meta.db_table)}")
    with pytest.raises(CommandError, match=r"^the database is not migrated \(.*\): run manage.py migrate first$"):
        run(command, *args)
