"""Settings → CRM traits (issue 20): editors declare traits; a change that stored values or rules
disagree with is refused with the reason."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from tailored.activation.models import Trait
from tailored.activation.traits import set_traits
from tailored.models import Segment

pytestmark = pytest.mark.django_db


def errors(response) -> str:
    return " ".join(e.get_text(" ", strip=True) for e in BeautifulSoup(response.content, "html.parser").select(".error-message"))


def form(**values) -> dict[str, str]:
    return {"key": "plan", "label": "Plan", "kind": "text", "choices": "", "description": "", **values}


def test_an_editor_declares_a_choice_trait_and_rules_can_name_it(editor, memory_store):
    response = editor.post(reverse("tailored_traits:add"), form(key="loyalty_tier", label="Loyalty tier", kind="choice", choices="silver\ngold\n"))
    assert response.status_code == 302, errors(response)
    assert Trait.objects.get(key="loyalty_tier").choices == ["silver", "gold"]
    segment = Segment(name="Gold", slug="gold", rule={"field": "trait.loyalty_tier", "op": "eq", "value": "gold"})
    segment.full_clean()  # compiles: the declaration reached the rule language at once
    assert "CRM traits" in editor.get(reverse("tailored_traits:index")).content.decode()


def test_a_choice_trait_needs_choices_and_a_key_is_a_lower_case_slug(editor):
    assert "needs its choices" in errors(editor.post(reverse("tailored_traits:add"), form(kind="choice")))
    assert "lower-case" in errors(editor.post(reverse("tailored_traits:add"), form(key="Plan")))
    assert not Trait.objects.exists()


def test_changing_the_kind_is_refused_while_stored_values_disagree(editor, memory_store):
    trait = Trait.objects.create(key="plan", label="Plan", kind="text")
    set_traits("c" * 32, {"plan": "pro"})
    response = editor.post(reverse("tailored_traits:edit", args=[trait.pk]), form(kind="number"))
    assert response.status_code == 200
    assert '1 visitor(s) have a stored value that would not fit (e.g. "pro")' in errors(response)
    assert Trait.objects.get(pk=trait.pk).kind == "text"
    set_traits("c" * 32, {"plan": None})
    response = editor.post(reverse("tailored_traits:edit", args=[trait.pk]), form(kind="number"))
    assert response.status_code == 302, errors(response)


def test_changing_the_kind_is_refused_while_a_segment_names_the_trait(editor, memory_store):
    trait = Trait.objects.create(key="plan", label="Plan", kind="text")
    Segment.objects.create(name="Pro plans", slug="pro", rule={"field": "trait.plan", "op": "eq", "value": "pro"})
    response = editor.post(reverse("tailored_traits:edit", args=[trait.pk]), form(kind="number"))
    assert "Segments use trait.plan with its current kind: Pro plans" in errors(response)


def test_taking_away_a_choice_that_visitors_hold_is_refused(editor, memory_store):
    trait = Trait.objects.create(key="tier", label="Tier", kind="choice", choices=["silver", "gold"])
    set_traits("d" * 32, {"tier": "gold"})
    response = editor.post(reverse("tailored_traits:edit", args=[trait.pk]), form(key="tier", kind="choice", choices="silver\nplatinum"))
    assert "would not fit" in errors(response)
    response = editor.post(reverse("tailored_traits:edit", args=[trait.pk]), form(key="tier", kind="choice", choices="silver\ngold\nplatinum"))
    assert response.status_code == 302, errors(response)


def test_a_trait_that_segments_name_is_not_deleted(editor, memory_store):
    trait = Trait.objects.create(key="plan", label="Plan", kind="text")
    Segment.objects.create(name="Pro plans", slug="pro", rule={"field": "trait.plan", "op": "eq", "value": "pro"})
    page = editor.get(reverse("tailored_traits:delete", args=[trait.pk])).content.decode()
    assert "Segments use trait.plan: Pro plans" in page
    editor.post(reverse("tailored_traits:delete", args=[trait.pk]))
    assert Trait.objects.filter(pk=trait.pk).exists()
    Segment.objects.filter(slug="pro").delete()
    editor.post(reverse("tailored_traits:delete", args=[trait.pk]))
    assert not Trait.objects.filter(pk=trait.pk).exists()
