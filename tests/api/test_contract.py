"""The public GraphQL contract: the committed SDL matches the code, and every committed
operation is valid against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from grapple.schema import schema

from graphql import parse, validate

GRAPHQL_DIR = Path(__file__).parents[2] / "graphql"
OPERATIONS = sorted((GRAPHQL_DIR / "operations").glob("*.graphql"))


def test_committed_sdl_matches_the_code():
    committed = (GRAPHQL_DIR / "schema.graphql").read_text().strip()
    assert str(schema).strip() == committed, "the schema changed: run `make schema` and commit graphql/schema.graphql"


def test_there_are_operations_to_check():
    assert "homepage.graphql" in {path.name for path in OPERATIONS}


@pytest.mark.parametrize("path", OPERATIONS, ids=[p.name for p in OPERATIONS])
def test_operation_is_valid_against_the_schema(path):
    errors = validate(schema.graphql_schema, parse(path.read_text()))
    assert errors == [], [error.message for error in errors]


def test_graphql_holds_no_python():
    assert not list(GRAPHQL_DIR.rglob("*.py")), "graphql/ must not be a Python package (it would shadow graphql-core)"
