"""Versioned model artifacts in PERSONALIZATION["MODEL_DIR"] (issue 7, item 5).

Layout: `<dir>/<name>/<version>/artifact.joblib` + `metadata.json`, and `<dir>/<name>/CURRENT`
holding the current version. A version is written into a temporary directory, fsynced, renamed
into place, and only then is CURRENT replaced (os.replace, atomic on POSIX): a reader sees the
old version or the new one, never a half-written one.

Web workers `load(name)` once and re-check CURRENT at most every MODEL_RELOAD_SECONDS, so a new
version published by `tailored_train` is picked up without a restart. A missing or unreadable
model logs a warning and returns the last good version (or None): callers fall back to rules
or popularity, never to an error page.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from tailored import conf, ml

logger = logging.getLogger(__name__)

ARTIFACT, METADATA, CURRENT = "artifact.joblib", "metadata.json", "CURRENT"
READABLE_FILE, READABLE_DIR = 0o644, 0o755


@dataclass(frozen=True, slots=True)
class Loaded:
    artifact: Any
    metadata: dict[str, Any]
    version: str


class ModelRegistry:
    """One directory of models. The module-level functions use the configured one."""

    def __init__(self, root: Path | str, keep: int = 5, reload_seconds: float = 30.0):
        self.root, self.keep, self.reload_seconds = Path(root), keep, reload_seconds
        self._cache: dict[str, tuple[Loaded | None, float]] = {}  # name -> (last good, checked at)
        self._failed: dict[str, str | None] = {}  # name -> the version that could not be loaded
        self._lock = threading.Lock()

    def publish(self, name: str, artifact: Any, metadata: dict[str, Any]) -> str:
        """Write a new version and make it current; returns the version."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        version = _new_version(folder)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=folder))
        try:
            full = {**library_versions(), "created_at": datetime.now(UTC).isoformat(), **metadata, "name": name, "version": version}
            _joblib().dump(artifact, staging / ARTIFACT)
            (staging / METADATA).write_text(json.dumps(full, indent=2, sort_keys=True, default=str))
            for path in (staging / ARTIFACT, staging / METADATA):
                os.chmod(path, READABLE_FILE)
                _fsync(path)
            os.chmod(staging, READABLE_DIR)  # mkdtemp makes it private; web workers may be another user
            os.rename(staging, folder / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(folder)
        _write_atomically(folder / CURRENT, version)
        self._prune(folder, version)
        return version

    def current_version(self, name: str) -> str | None:
        try:
            return (self.root / name / CURRENT).read_text().strip() or None
        except OSError:
            return None

    def versions(self, name: str) -> list[str]:
        """The complete versions kept, oldest first."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / METADATA).exists())

    def read(self, name: str, version: str | None = None) -> Loaded:
        """Read one version (default: the current one) from disk; raises on any problem."""
        if version is not None:
            return self._read_version(name, version)
        for _ in range(3):
            current = self.current_version(name)
            if current is None:
                raise FileNotFoundError(f"no current version of model {name!r} in {self.root}")
            try:
                return self._read_version(name, current)
            except FileNotFoundError:
                # Pruned by a publisher between reading CURRENT and the files: CURRENT has moved on.
                if self.current_version(name) == current:
                    raise
        raise FileNotFoundError(f"model {name!r} kept changing while being read")

    def _read_version(self, name: str, version: str) -> Loaded:
        folder = self.root / name / version
        metadata = json.loads((folder / METADATA).read_text())
        return Loaded(_joblib().load(folder / ARTIFACT), metadata, version)

    def load(self, name: str, now: float | None = None) -> Loaded | None:
        """The current version, cached per process; re-checks CURRENT every `reload_seconds`.
        A missing or corrupt model logs a warning and gives the last good version, or None."""
        now = time.monotonic() if now is None else now
        with self._lock:
            cached, checked = self._cache.get(name, (None, -float("inf")))
            if now - checked < self.reload_seconds and name in self._cache:
                return cached
            self._cache[name] = (cached, now)  # other threads keep the cached one meanwhile
        version = self.current_version(name)
        if (cached is not None and version == cached.version) or self._failed.get(name, "") == version:
            return cached  # versions never change once published: a failed one is not retried
        if version is not None and not ml.available():
            # A model trained elsewhere, on a site without the extra: said once, like a failure.
            self._failed[name] = version
            logger.warning("model %r (version %s) not loaded, falling back: %s", name, version, ml.requirement_message("Loading a trained model"))
            return cached
        try:
            loaded = self.read(name, version)
        except Exception as error:
            self._failed[name] = version  # warn once per version, not at every re-check
            logger.warning("model %r (version %s) could not be loaded, %s: %s: %s", name, version,
                           "keeping the last good version" if cached else "falling back", type(error).__name__, error)
            return cached
        with self._lock:
            self._cache[name] = (loaded, now)
        return loaded

    def forget(self) -> None:
        """Drop the per-process cache (tests, and after settings change)."""
        with self._lock:
            self._cache.clear()
            self._failed.clear()

    def _prune(self, folder: Path, current: str) -> None:
        for old in self.versions(folder.name)[: -self.keep] if self.keep > 0 else []:
            if old != current:
                shutil.rmtree(folder / old, ignore_errors=True)


def _joblib():
    """joblib (and numpy with it) load with the first model, not with every web process."""
    import joblib

    return joblib


def library_versions() -> dict[str, str]:
    import numpy
    import scipy
    import sklearn

    return {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}


def _new_version(folder: Path) -> str:
    """A sortable, unique version: UTC time to the microsecond, bumped past any existing one."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    existing = {p.name for p in folder.iterdir()}
    version, n = stamp, 1
    while version in existing:
        version, n = f"{stamp}-{n}", n + 1
    return version


def _write_atomically(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, READABLE_FILE)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_registries: dict[tuple[str, int, float], ModelRegistry] = {}


def get_registry() -> ModelRegistry:
    """The configured registry, one per settings combination (so its cache lives per process)."""
    root = conf.get("MODEL_DIR") or Path(settings.BASE_DIR) / "var" / "models"
    key = (str(root), int(conf.get("MODEL_KEEP_VERSIONS")), float(conf.get("MODEL_RELOAD_SECONDS")))
    if key not in _registries:
        _registries[key] = ModelRegistry(*key)
    return _registries[key]


def publish(name: str, artifact: Any, metadata: dict[str, Any]) -> str:
    return get_registry().publish(name, artifact, metadata)


def load(name: str) -> Loaded | None:
    return get_registry().load(name)


def versions(name: str) -> list[str]:
    return get_registry().versions(name)
