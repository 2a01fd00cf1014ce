"""A command run against a database that was never migrated (or is behind) answers with one line
that says what to do, not a traceback from the first query."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.management import CommandError
from django.db import OperationalError, ProgrammingError

# SQLite, PostgreSQL and MySQL/MariaDB say a table is missing so.
MISSING_TABLE = re.compile(r"no such table|relation \S+ does not exist|Table \S+ doesn't exist")


def missing_table(error: BaseException) -> str | None:
    """The database's first line about a missing table, or None for any other error."""
    said = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return said if MISSING_TABLE.search(said) else None


def needs_migrated_database(handle: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command's `handle`: a missing table becomes a CommandError naming `migrate`."""

    @wraps(handle)
    def checked(*args: Any, **options: Any) -> Any:
        try:
            return handle(*args, **options)
        except (OperationalError, ProgrammingError) as error:
            said = missing_table(error)
            if said is None:
                raise
            raise CommandError(f"the database is not migrated ({said}): run manage.py migrate first") from error

    return checked
