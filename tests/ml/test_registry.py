"""The model registry: versioned artifacts with metadata, an atomic CURRENT pointer, reload on a
version bump, and fallbacks (missing or corrupt model: a warning and the last good or None)."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from tailored.ml import registry
from tailored.ml.registry import ModelRegistry


@pytest.fixture
def models(tmp_path):
    return ModelRegistry(tmp_path / "models", keep=3, reload_seconds=30)


def test_publish_writes_the_artifact_and_its_metadata(models, tmp_path):
    version = models.publish("personas", {"weights": [1, 2, 3]}, {"features": ["page_views"], "metrics": {"silhouette": 0.4}, "seed": 7})
    loaded = models.load("personas")
    assert loaded.version == version and loaded.artifact == {"weights": [1, 2, 3]}
    assert loaded.metadata["features"] == ["page_views"] and loaded.metadata["metrics"] == {"silhouette": 0.4}
    assert {"python", "numpy", "scipy", "sklearn", "created_at"} <= set(loaded.metadata)
    folder = tmp_path / "models" / "personas"
    assert (folder / "CURRENT").read_text() == version
    assert json.loads((folder / version / "metadata.json").read_text())["version"] == version
    assert sorted(p.name for p in (folder / version).iterdir()) == ["artifact.joblib", "metadata.json"]


def test_versions_are_ordered_and_only_the_last_n_are_kept(models):
    published = [models.publish("m", n, {}) for n in range(5)]
    assert published == sorted(published) and len(set(published)) == 5
    assert models.versions("m") == published[-3:]
    assert models.read("m").artifact == 4


def test_a_process_reloads_after_a_version_bump_but_not_before_its_recheck(models):
    models.publish("m", "old", {})
    assert models.load("m", now=100.0).artifact == "old"
    models.publish("m", "new", {})
    assert models.load("m", now=110.0).artifact == "old"  # cached until the re-check interval
    assert models.load("m", now=131.0).artifact == "new"


def test_a_missing_model_is_none_with_a_warning(models, caplog):
    with caplog.at_level(logging.WARNING, logger="tailored.ml.registry"):
        assert models.load("never-trained") is None
    assert "never-trained" in caplog.text and "falling back" in caplog.text


def test_a_corrupt_artifact_keeps_the_last_good_version(models, tmp_path, caplog):
    models.publish("m", "good", {})
    assert models.load("m", now=0.0).artifact == "good"
    bad = models.publish("m", "bad", {})
    (tmp_path / "models" / "m" / bad / "artifact.joblib").write_bytes(b"not a pickle")
    with caplog.at_level(logging.WARNING, logger="tailored.ml.registry"):
        kept = models.load("m", now=100.0)
    assert kept.artifact == "good" and "keeping the last good version" in caplog.text


def test_a_corrupt_model_with_nothing_loaded_before_is_none(models, tmp_path, caplog):
    version = models.publish("m", "x", {})
    (tmp_path / "models" / "m" / version / "metadata.json").write_text("{truncated")
    with caplog.at_level(logging.WARNING, logger="tailored.ml.registry"):
        assert models.load("m") is None
    assert "could not be loaded" in caplog.text


def test_readers_see_a_whole_old_or_new_version_while_another_thread_publishes(models):
    """Every read during publishing gets an artifact and metadata of one and the same version."""
    size = 5_000  # big enough that writing an artifact takes a while

    def artifact(n: int) -> dict:
        return {"n": n, "payload": [n] * size}

    models.publish("m", artifact(0), {"n": 0})
    seen: list[int] = []
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                loaded = models.read("m")
            except Exception as error:  # any exception is a torn read
                problems.append(repr(error))
                continue
            n = loaded.artifact["n"]
            if loaded.metadata["n"] != n or loaded.artifact["payload"] != [n] * size:
                problems.append(f"version {loaded.version} mixes {n} and {loaded.metadata['n']}")
            seen.append(n)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    for n in range(1, 9):
        models.publish("m", artifact(n), {"n": n})
    done.set()
    for thread in readers:
        thread.join()
    assert not problems
    assert len(seen) > 8 and len(set(seen)) > 1  # reads overlapped several publishes
    assert models.read("m").artifact["n"] == 8


def test_the_configured_registry_uses_the_settings(settings, tmp_path):
    settings.PERSONALIZATION = {"MODEL_DIR": str(tmp_path / "configured"), "MODEL_KEEP_VERSIONS": 2, "MODEL_RELOAD_SECONDS": 0}
    version = registry.publish("m", 1, {})
    assert registry.versions("m") == [version]
    assert registry.load("m").artifact == 1
    assert (tmp_path / "configured" / "m" / version / "artifact.joblib").exists()


def test_published_files_are_readable_by_other_users(models, tmp_path):
    """Web workers may run as another user than the training job."""
    version = models.publish("m", 1, {})
    folder = tmp_path / "models" / "m"
    assert (folder / version).stat().st_mode & 0o777 == 0o755
    assert (folder / version / "artifact.joblib").stat().st_mode & 0o777 == 0o644
    assert (folder / "CURRENT").stat().st_mode & 0o777 == 0o644


def test_a_broken_version_is_warned_about_once_and_a_new_one_is_picked_up(models, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tailored.ml.registry"):
        assert models.load("m", now=0.0) is None
        assert models.load("m", now=100.0) is None
    assert caplog.text.count("could not be loaded") == 1
    models.publish("m", "trained at last", {})
    assert models.load("m", now=200.0).artifact == "trained at last"
