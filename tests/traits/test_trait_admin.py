"""Settings → CRM traits (issue 20): editors declare traits; a change that stored values or rules
disagree with is refused with the reason."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from tailored.activation.models import Trait, Trigger
from tailored.activation.traits import set_traits
from tailored.activation.triggers import spec_of
from tailored.models import Segment
from tests.activation.conftest import make_trigger, webhook

pytestmark = pytest.mark.django_db


def errors(response) -> str:
    return " ".join(e.get_text(" ", strip=True) for e in BeautifulSoup(response.content, "html.parser").select(".error-message"))


def page_text(response) -> str:
    return BeautifulSoup(response.content, "html.parser").get_text(" ", strip=True)


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
    assert (
        'Rules use trait.plan in a way this change would break: segment "Pro plans": '
        "$.value: must be a number, got 'pro'. Change their rules first."
    ) in errors(response)
    assert Trait.objects.get(pk=trait.pk).kind == "text"


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
    page = page_text(editor.get(reverse("tailored_traits:delete", args=[trait.pk])))
    assert 'Rules use trait.plan: segment "Pro plans"' in page
    editor.post(reverse("tailored_traits:delete", args=[trait.pk]))
    assert Trait.objects.filter(pk=trait.pk).exists()
    Segment.objects.filter(slug="pro").delete()
    editor.post(reverse("tailored_traits:delete", args=[trait.pk]))
    assert not Trait.objects.filter(pk=trait.pk).exists()


def test_taking_away_a_choice_that_a_segment_compares_with_is_refused(editor, memory_store):
    trait = Trait.objects.create(key="tier", label="Tier", kind="choice", choices=["silver", "gold"])
    Segment.objects.create(name="Gold members", slug="gold", rule={"field": "trait.tier", "op": "eq", "value": "gold"})
    response = editor.post(reverse("tailored_traits:edit", args=[trait.pk]), form(key="tier", kind="choice", choices="silver"))
    assert response.status_code == 200
    assert (
        'Rules use trait.tier in a way this change would break: segment "Gold members": '
        "$.value: must be one of silver, got 'gold'. Change their rules first."
    ) in errors(response)
    assert Trait.objects.get(pk=trait.pk).choices == ["silver", "gold"]
    Segment.objects.get(slug="gold").full_clean()  # still compiles against the stored declaration
    # Taking away a choice no rule uses, or adding one, is a change the rules survive.
    response = editor.post(reverse("tailored_traits:edit", args=[trait.pk]), form(key="tier", kind="choice", choices="gold\nplatinum"))
    assert response.status_code == 302, errors(response)
    assert Trait.objects.get(pk=trait.pk).choices == ["gold", "platinum"]


def test_a_change_that_breaks_a_trigger_condition_is_refused(editor, memory_store):
    trait = Trait.objects.create(key="tier", label="Tier", kind="choice", choices=["silver", "gold"])
    make_trigger(webhook("http://127.0.0.1:9/hook"), "cart_abandoned", name="Gold carts", params={"minutes": 30},
                 condition={"all": [{"field": "context.device", "op": "eq", "value": "mobile"},
                                    {"field": "trait.tier", "op": "in", "value": ["gold"]}]})
    response = editor.post(reverse("tailored_traits:edit", args=[trait.pk]), form(key="tier", kind="number"))
    assert response.status_code == 200
    assert 'trigger "Gold carts": $.all[1].op: unknown operator' in errors(response)
    assert Trait.objects.get(pk=trait.pk).kind == "choice"


def test_a_trait_that_only_a_trigger_condition_names_is_not_deleted(editor, memory_store):
    trait = Trait.objects.create(key="plan", label="Plan", kind="text")
    trigger = make_trigger(webhook("http://127.0.0.1:9/hook"), "cart_abandoned", name="Pro carts", params={"minutes": 30},
                           condition={"field": "trait.plan", "op": "eq", "value": "pro"})
    page = page_text(editor.get(reverse("tailored_traits:delete", args=[trait.pk])))
    assert 'Rules use trait.plan: trigger "Pro carts"' in page
    response = editor.post(reverse("tailored_traits:delete", args=[trait.pk]), follow=True)
    assert 'Rules use trait.plan: trigger "Pro carts". Change their rules first.' in [str(m) for m in response.context["messages"]]
    assert Trait.objects.filter(pk=trait.pk).exists()
    assert spec_of(Trigger.objects.get(pk=trigger.pk)).condition is not None  # the workers still compile it
    Trigger.objects.filter(pk=trigger.pk).update(condition=None)
    editor.post(reverse("tailored_traits:delete", args=[trait.pk]))
    assert not Trait.objects.filter(pk=trait.pk).exists()
