"""Test settings: locmem cache and a fast password hasher, as in bakerydemo."""

import os
import tempfile

from .base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# SQLite test databases live in a file, not in shared memory: the live server's threads (browser
# journeys, previews) then wait for a lock instead of failing with "database table is locked".
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405

    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"tailored-test-{os.getpid()}.sqlite3")}  # noqa: F405
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30  # noqa: F405

# The preview panel re-renders on a timer while an editor types; browser journeys that interact
# with the previewed page need it to stay put until they ask for a refresh.
WAGTAIL_AUTO_UPDATE_PREVIEW_INTERVAL = 0  # 0: no automatic refresh

# Trained models of a developer's `make demo` (var/models) must not change what tests see.
PERSONALIZATION = {**PERSONALIZATION, "MODEL_DIR": os.path.join(tempfile.gettempdir(), f"tailored-test-models-{os.getpid()}")}  # noqa: F405

# Tests send to HTTP servers they start on loopback; a production site allows no private network
# (tailored.outbound). The tests of that guard set this back to [].
PERSONALIZATION["DESTINATION_PRIVATE_NETWORKS"] = ["127.0.0.0/8", "::1/128"]  # noqa: F405
