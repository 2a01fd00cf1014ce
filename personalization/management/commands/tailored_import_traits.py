"""`manage.py tailored_import_traits FILE.csv`: a first load of CRM traits (issue 20 item 4).

One column names the visitor, `visitor_id` or `user_id`; every other column is a declared trait's
key. An empty cell leaves that trait as it is. Numbers are written as numbers (12, 12.5), yes/no
traits as true/false (also yes/no, 1/0). Every row is checked before anything is written: bad
rows are reported by line number and reason, and nothing is written unless --skip-invalid
(then the good rows are). --dry-run checks and reports without writing.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tailored.activation.models import Trait
from tailored.activation.traits import declared_traits, write_traits
from tailored.activation.traits_api import check_records
from tailored.management.database import needs_migrated_database

PROGRESS_EVERY = 1000
ID_COLUMNS = ("visitor_id", "user_id")
TRUE_WORDS, FALSE_WORDS = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})


class Command(BaseCommand):
    help = "Import CRM traits from a CSV file (a visitor_id or user_id column, then one column per trait)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file; its first line names the columns.")
        parser.add_argument("--skip-invalid", action="store_true", help="Write the valid rows even when some are bad.")
        parser.add_argument("--dry-run", action="store_true", help="Check every row and report; write nothing.")

    @needs_migrated_database
    def handle(self, *args, file: str, skip_invalid: bool, dry_run: bool, **options):
        good, bad, total = self._read(file, declared_traits())
        for line, reason in bad:
            self.stderr.write(f"line {line}: {reason}")
        self.stdout.write(f"checked {total} rows: {len(good)} valid, {len({line for line, _ in bad})} invalid")
        if bad and not skip_invalid:
            raise CommandError("nothing was written: fix the rows above, or pass --skip-invalid to write the valid ones")
        if dry_run:
            self.stdout.write("dry run: nothing was written")
            return
        self._write(good)

    def _read(self, file: str, declared: dict[str, Trait]):
        """_check_file's answer, or a CommandError naming the line a file cannot be read at."""
        try:
            with open(file, newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                try:
                    return self._check_file(reader, declared)
                except csv.Error as error:
                    raise CommandError(f"line {reader.line_num}: {_csv_problem(error)}") from None
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error}") from None
        except UnicodeDecodeError:
            # The decoder reads ahead in blocks: the reader's line number is not the bad byte's.
            raise CommandError(f"line {first_line_not_utf8(file)}: the file is not UTF-8 text (save it as UTF-8)") from None

    def _check_file(self, reader: Iterator[list[str]], declared: dict[str, Trait]):
        """(valid (visitor id, traits) pairs, [(line, reason)], rows read), checked a thousand
        rows at a time (a few queries per thousand, however the rows name their visitors)."""
        header = next(reader, None)
        id_column, trait_columns = _columns(header, declared)
        good: list[tuple[str, dict[str, Any]]] = []
        bad: list[tuple[int, str]] = []
        chunk: list[tuple[int, dict[str, Any], list[str]]] = []  # (line, record, problems so far)
        total = 0
        for total, cells in enumerate(reader, start=1):
            chunk.append((reader.line_num, *_record(cells, header, id_column, trait_columns, declared)))
            if total % PROGRESS_EVERY == 0:
                self._check_chunk(chunk, declared, good, bad)
                chunk = []
                self.stdout.write(f"checked {total} rows")
        self._check_chunk(chunk, declared, good, bad)
        return good, bad, total

    @staticmethod
    def _check_chunk(chunk, declared: dict[str, Trait], good: list, bad: list) -> None:
        """Check a chunk's records together; a row is valid when neither its cells nor its
        record had a problem (every problem of a row is reported at once)."""
        readable = [(record, problems) for _, record, problems in chunk if record]
        checked, errors = check_records([record for record, _ in readable], declared)
        refused = set()
        for error in errors:
            refused.add(error["index"])
            readable[error["index"]][1].append(f"{error['key']}: {error['reason']}" if error["key"] else error["reason"])
        accepted = iter(checked)  # one pair per record check_records accepted, in order
        for index, (_, problems) in enumerate(readable):
            pair = None if index in refused else next(accepted)
            if pair is not None and not problems:
                good.append(pair)
        bad.extend((line, problem) for line, _, problems in chunk for problem in problems)

    def _write(self, good: list[tuple[str, dict[str, Any]]]) -> None:
        visitors = traits_set = 0
        for start in range(0, len(good), PROGRESS_EVERY):
            counts = write_traits(good[start : start + PROGRESS_EVERY])
            visitors, traits_set = visitors + counts.visitors, traits_set + counts.traits_set
            self.stdout.write(f"wrote {min(start + PROGRESS_EVERY, len(good))} rows")
        self.stdout.write(self.style.SUCCESS(f"imported {len(good)} rows: {traits_set} traits for {visitors} visitors"))


def first_line_not_utf8(file: str) -> int:
    """The number of the file's first line that is not UTF-8 (a character's bytes never hold a
    newline, so each line decodes on its own)."""
    number = 1
    with open(file, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                return number
    return number


def _csv_problem(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return f"a cell is longer than {csv.field_size_limit()} characters"
    return f"the file cannot be read as CSV ({error})"


def _columns(header: list[str] | None, declared: dict[str, Trait]) -> tuple[str, list[str]]:
    if not header:
        raise CommandError("the file is empty: its first line must name the columns")
    header = [name.strip() for name in header]
    ids = [name for name in header if name in ID_COLUMNS]
    if len(ids) != 1:
        raise CommandError("the first line must name exactly one of the columns visitor_id or user_id")
    traits = [name for name in header if name not in ID_COLUMNS]
    unknown = [name for name in traits if name not in declared]
    if unknown:
        known = ", ".join(sorted(declared)) or "none yet"
        raise CommandError(f"not declared traits: {', '.join(unknown)} (declared: {known})")
    return ids[0], traits


def _record(cells, header, id_column, trait_columns, declared) -> tuple[dict[str, Any], list[str]]:
    """The row as an API record, and the cells that cannot be read as their trait's kind."""
    if len(cells) != len(header):
        return {}, [f"expected {len(header)} cells, got {len(cells)}"]
    row = {name.strip(): cell.strip() for name, cell in zip(header, cells, strict=True)}
    traits: dict[str, Any] = {}
    problems: list[str] = []
    for key in trait_columns:
        if row[key] == "":
            continue  # an empty cell: not set
        try:
            traits[key] = cell_value(declared[key], row[key])
        except ValueError as error:
            problems.append(f"{key}: {error}")
    return {id_column: row[id_column], "traits": traits}, problems


def cell_value(trait: Trait, text: str) -> Any:
    """A CSV cell as its trait's kind: numbers and yes/no are typed, text stays text."""
    if trait.kind == Trait.Kind.NUMBER:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if trait.kind == Trait.Kind.BOOLEAN:
        word = text.lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise ValueError(f"expected true or false (or yes/no, 1/0), got {text!r}")
        return word in TRUE_WORDS
    return text
