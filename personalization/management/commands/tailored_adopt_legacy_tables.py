"""Keep the data of a database made before the `tailored` namespace (version 0.1's app label was
`personalization`, its tables `personalization_*`): rename the tables, the recorded migrations and
the content types (so permissions and Wagtail's references follow). Run it once, BEFORE `migrate`:

    python manage.py tailored_adopt_legacy_tables
    python manage.py migrate

It does nothing on a database that has no legacy tables, or that `tailored` already owns.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction

LEGACY_LABEL = "personalization"
LABEL = "tailored"


class Command(BaseCommand):
    help = "Rename version 0.1's personalization_* tables, migrations and content types to tailored."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="The database to adopt (default: default).")

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        tables = set(connection.introspection.table_names())
        renames = legacy_renames(tables)
        if not renames:
            self.stdout.write("No legacy personalization_* tables: nothing to do.")
            return
        clashes = [new for _, new in renames if new in tables]
        if clashes:
            raise CommandError(
                f"Both legacy and new tables exist ({', '.join(sorted(clashes))}): `migrate` ran before this "
                "command. Drop the new, empty tables (or restore a backup) and run it again."
            )
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            quote = connection.ops.quote_name
            for old, new in renames:
                cursor.execute(f"ALTER TABLE {quote(old)} RENAME TO {quote(new)}")
                self.stdout.write(f"  {old} -> {new}")
            if "django_migrations" in tables:
                cursor.execute("UPDATE django_migrations SET app = %s WHERE app = %s", [LABEL, LEGACY_LABEL])
            if "django_content_type" in tables:
                cursor.execute("UPDATE django_content_type SET app_label = %s WHERE app_label = %s", [LABEL, LEGACY_LABEL])
        self.stdout.write(self.style.SUCCESS(f"Adopted {len(renames)} tables. Now run `manage.py migrate`."))


def legacy_renames(existing_tables: set[str]) -> list[tuple[str, str]]:
    """(legacy, new) table names for every table of the tailored app that exists under its old name."""
    renames = []
    for model in apps.get_app_config(LABEL).get_models(include_auto_created=True):
        new = model._meta.db_table
        old = LEGACY_LABEL + new.removeprefix(LABEL)
        if new.startswith(LABEL + "_") and old in existing_tables:
            renames.append((old, new))
    return renames
