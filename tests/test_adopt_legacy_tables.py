"""A database made by version 0.1 (app label `personalization`) keeps its data after the rename:
`tailored_adopt_legacy_tables` then `migrate` (issue 13 item 1). Runs on a throwaway SQLite file
in subprocesses, so the test database is never renamed under other tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MAKE_LEGACY = """
import django; django.setup()
from django.apps import apps
from django.db import connection
from tailored.models import Segment
Segment.objects.create(name="Loyal", slug="loyal", rule={"all": [{"field": "profile.sessions", "op": "gte", "value": 5}]})
with connection.cursor() as cursor:
    for model in apps.get_app_config("tailored").get_models(include_auto_created=True):
        table = model._meta.db_table
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "personalization{table[len("tailored"):]}"')
    cursor.execute("UPDATE django_migrations SET app = 'personalization' WHERE app = 'tailored'")
    cursor.execute("UPDATE django_content_type SET app_label = 'personalization' WHERE app_label = 'tailored'")
"""

READ_BACK = """
import django; django.setup()
from django.contrib.contenttypes.models import ContentType
from tailored.models import Segment
print(list(Segment.objects.values_list("slug", flat=True)), ContentType.objects.get_for_model(Segment).app_label)
"""


def run(db: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="cms.settings.test", SQLITE_PATH=str(db))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_legacy_database_keeps_its_segments_through_adopt_and_migrate(tmp_path):
    db = tmp_path / "legacy.sqlite3"
    assert run(db, "manage.py", "migrate", "-v0").returncode == 0
    made = run(db, "-c", MAKE_LEGACY)
    assert made.returncode == 0, made.stderr

    # Migrating first is refused by Django (the experiments app's history needs `tailored`), so
    # no empty tables are created beside the legacy ones.
    too_soon = run(db, "manage.py", "migrate", "-v0")
    assert too_soon.returncode != 0 and "InconsistentMigrationHistory" in too_soon.stderr

    adopted = run(db, "manage.py", "tailored_adopt_legacy_tables")
    assert adopted.returncode == 0, adopted.stderr
    assert "personalization_segment -> tailored_segment" in adopted.stdout
    migrated = run(db, "manage.py", "migrate", "--check")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr  # nothing left to apply

    read = run(db, "-c", READ_BACK)
    assert read.stdout.strip() == "['loyal'] tailored", read.stderr
    again = run(db, "manage.py", "tailored_adopt_legacy_tables")
    assert "nothing to do" in again.stdout
