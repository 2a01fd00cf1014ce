"""Traits in (issue 20 item 4): validation, set_traits, export and erasure, and rules over traits
for a consenting visitor's request (never for one without consent)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from tailored import conf, services
from tailored.activation.models import VisitorTraits
from tailored.activation.traits import TraitError, set_traits, validate_traits
from tailored.core.rules import RuleError, compile_rule
from tailored.erasure import erase_visitor, export_visitor
from tailored.models import Segment
from tailored.segments import segment_cache
from tests.conftest import DESKTOP_UA
from tests.helpers import CONSENT_GRANTED, signed_visitor_id

pytestmark = pytest.mark.django_db
VISITOR = "a" * 32


def problems(error: TraitError) -> list[tuple[str | None, str]]:
    return [(p.key, p.reason) for p in error.problems]


def test_valid_traits_come_back_typed(declared):
    values = {"loyalty_tier": "gold", "lifetime_orders": 12, "account_type": "business", "newsletter": False}
    assert validate_traits(values) == values
    assert validate_traits({"loyalty_tier": None}) == {"loyalty_tier": None}  # None removes


def test_every_problem_is_reported_with_its_key_and_what_was_expected(declared):
    with pytest.raises(TraitError) as caught:
        validate_traits({
            "loyalty_tier": "diamond", "lifetime_orders": "12", "newsletter": "yes", "shoe_size": 42,
            "account_type": "x" * 201,
        })
    found = dict(problems(caught.value))
    assert found["loyalty_tier"] == "expected one of bronze, silver, gold, platinum, got 'diamond'"
    assert found["lifetime_orders"] == "expected a number, got '12'"
    assert found["newsletter"] == "expected true or false, got 'yes'"
    assert found["shoe_size"].startswith("not a declared trait (declared: account_type, lifetime_orders")
    assert found["account_type"] == "expected at most 200 characters, got 201"
    with pytest.raises(TraitError, match="expected a number, got True"):
        validate_traits({"lifetime_orders": True})
    with pytest.raises(TraitError, match="expected a number, got nan"):
        validate_traits({"lifetime_orders": float("nan")})


def test_set_traits_for_a_visitor_id_merges_and_removes(declared, use_redis_store):
    assert set_traits(VISITOR, {"loyalty_tier": "gold", "lifetime_orders": 3}) == {"loyalty_tier": "gold", "lifetime_orders": 3}
    assert set_traits(VISITOR, {"lifetime_orders": None, "newsletter": True}) == {"loyalty_tier": "gold", "newsletter": True}
    assert VisitorTraits.objects.get(visitor_id=VISITOR).values == {"loyalty_tier": "gold", "newsletter": True}
    assert conf.get_profile_store().get(VISITOR, 0).traits == {"loyalty_tier": "gold", "newsletter": True}
    set_traits(VISITOR, {"loyalty_tier": None, "newsletter": None})
    assert not VisitorTraits.objects.filter(visitor_id=VISITOR).exists()  # no empty row left behind
    assert conf.get_profile_store().get(VISITOR, 0).traits == {}


def test_set_traits_for_a_user_uses_the_users_visitor_id(declared, use_redis_store, django_user_model):
    user = django_user_model.objects.create_user("crm-customer")
    services.set_traits(user, {"loyalty_tier": "platinum"})  # the services entry point
    visitor_id = services.user_visitor_id(user.pk)
    assert VisitorTraits.objects.get(visitor_id=visitor_id).values == {"loyalty_tier": "platinum"}
    assert conf.get_profile_store().get(visitor_id, 0).traits == {"loyalty_tier": "platinum"}


def test_a_bad_value_writes_nothing(declared, use_redis_store):
    set_traits(VISITOR, {"loyalty_tier": "gold"})
    with pytest.raises(TraitError):
        set_traits(VISITOR, {"loyalty_tier": "silver", "lifetime_orders": "many"})
    assert VisitorTraits.objects.get(visitor_id=VISITOR).values == {"loyalty_tier": "gold"}
    assert conf.get_profile_store().get(VISITOR, 0).traits == {"loyalty_tier": "gold"}
    with pytest.raises(TraitError, match="32 lower-case hexadecimal"):
        set_traits("not-an-id", {"loyalty_tier": "gold"})


def test_export_includes_and_erasure_removes_the_traits(declared, use_redis_store):
    set_traits(VISITOR, {"loyalty_tier": "gold"})
    exported = export_visitor(VISITOR, None)
    assert exported["traits"] == {"loyalty_tier": "gold"}
    assert exported["profile"]["traits"] == {"loyalty_tier": "gold"}
    detail = erase_visitor(VISITOR)
    assert detail["traits"] == 1 and detail["profile_keys"] >= 1
    assert not VisitorTraits.objects.filter(visitor_id=VISITOR).exists()
    assert conf.get_profile_store().get(VISITOR, 0).traits == {}


def test_an_undeclared_trait_does_not_compile_and_a_declared_one_takes_its_kinds_operators(declared):
    with pytest.raises(RuleError, match="no trait 'shoe_size' is declared") as caught:
        compile_rule({"field": "trait.shoe_size", "op": "eq", "value": 42})
    assert caught.value.path == "$.field"
    with pytest.raises(RuleError, match="use one of eq$") as caught:
        compile_rule({"field": "trait.newsletter", "op": "ne", "value": True})
    assert caught.value.path == "$.op"
    with pytest.raises(RuleError, match="must be one of bronze") as caught:
        compile_rule({"field": "trait.loyalty_tier", "op": "in", "value": ["gold", "diamond"]})
    assert caught.value.path == "$.value[1]"


def _request(visitor_id: str, consent: str | None):
    request = RequestFactory().get("/", HTTP_USER_AGENT=DESKTOP_UA)
    if consent is not None:
        request.COOKIES.update({"tl_consent": consent, "tl_vid": signed_visitor_id(visitor_id)})
    return request


def test_a_trait_segment_matches_a_consenting_visitor_but_not_one_without_consent(declared, use_redis_store):
    Segment.objects.create(
        name="Gold members", slug="gold-members",
        rule={"field": "trait.loyalty_tier", "op": "in", "value": ["gold", "platinum"]},
    )
    segment_cache.invalidate()
    try:
        set_traits(VISITOR, {"loyalty_tier": "gold"})  # stored without asking: the site's own CRM data
        assert "gold-members" in services.resolve_visitor(_request(VISITOR, CONSENT_GRANTED)).segments
        assert "gold-members" not in services.resolve_visitor(_request(VISITOR, "analytics")).segments
        assert "gold-members" not in services.resolve_visitor(_request(VISITOR, None)).segments
        set_traits(VISITOR, {"loyalty_tier": "silver"})
        assert "gold-members" not in services.resolve_visitor(_request(VISITOR, CONSENT_GRANTED)).segments
    finally:
        segment_cache.invalidate()
