"""The CRM traits the rule spec declares (fixtures/spec/rules.json `traits`), declared as a site's
Trait rows would declare them, so that `trait.<key>` rules in the spec compile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailored.core import fields

SPEC_TRAITS = json.loads((Path(__file__).parents[2] / "fixtures" / "spec" / "rules.json").read_text())["traits"]


def declare_spec_traits() -> None:
    fields.declare_traits((key, spec["kind"], key, spec.get("choices", ())) for key, spec in SPEC_TRAITS.items())


# At import: some modules compile the spec's rules while they are collected.
declare_spec_traits()


@pytest.fixture(autouse=True)
def spec_traits():
    """The spec's traits, and no refresh from the database (the core's tests have none)."""
    kept_fields, kept_refresh = dict(fields.TRAIT_FIELDS), list(fields._trait_refresh)
    fields.set_trait_refresh(None)
    declare_spec_traits()
    yield SPEC_TRAITS
    fields.TRAIT_FIELDS.clear()
    fields.TRAIT_FIELDS.update(kept_fields)
    fields._trait_refresh[:] = kept_refresh
