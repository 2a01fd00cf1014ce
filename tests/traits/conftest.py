"""Declared traits for the traits tests: a choice, a number, a text and a yes/no."""

from __future__ import annotations

import pytest

from tailored.activation import traits as traits_module
from tailored.activation.models import Trait
from tailored.core import fields


@pytest.fixture
def declared(db):
    traits = [
        Trait.objects.create(key="loyalty_tier", label="Loyalty tier", kind="choice", choices=["bronze", "silver", "gold", "platinum"]),
        Trait.objects.create(key="lifetime_orders", label="Lifetime orders", kind="number"),
        Trait.objects.create(key="account_type", label="Account type", kind="text"),
        Trait.objects.create(key="newsletter", label="Newsletter subscriber", kind="boolean"),
    ]
    yield {trait.key: trait for trait in traits}
    # The rows roll back after this: forget their declarations, and read the table afresh next time.
    fields.declare_traits(())
    traits_module._signature[:] = [None, float("-inf")]
