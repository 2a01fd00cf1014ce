"""Settings → CRM traits: a kind change that stored values disagree with is refused, and the
refusal quotes a few of those values (visitors' data: an email, a CRM id) only to an editor with
the Visitors screen's permission (`tailored.look_up_visitors`); anyone else who may change traits
reads how many visitors hold such values, never the values."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from tailored.activation.models import Trait, VisitorTraits

pytestmark = pytest.mark.django_db

EMAILS = ["alice.private@example.com", "bob.private@example.com", "carol.private@example.com"]


def trait_editor(*extra: tuple[str, str]):
    user = get_user_model().objects.create_user("trait-editor", password="x")
    for app, codename in (("wagtailadmin", "access_admin"), ("tailored", "change_trait"), *extra):
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return user


def change_kind_to_number(client, user):
    trait = Trait.objects.create(key="crm_email", label="CRM email", kind=Trait.Kind.TEXT)
    for index, email in enumerate(EMAILS):
        VisitorTraits.objects.create(visitor_id=f"{index:032x}", values={"crm_email": email})
    client.force_login(user)
    response = client.post(
        reverse("tailored_traits:edit", args=[trait.pk]),
        {"key": "crm_email", "label": "CRM email", "kind": "number", "choices": "", "description": ""},
    )
    assert response.status_code == 200  # refused: the form again, with the reason
    assert Trait.objects.get(pk=trait.pk).kind == Trait.Kind.TEXT
    page = response.content.decode()
    errors = " ".join(e.get_text(" ", strip=True) for e in BeautifulSoup(page, "html.parser").select(".error-message"))
    return page, errors


def test_an_editor_without_the_visitor_permission_reads_the_count_not_the_values(client):
    user = trait_editor()
    assert not user.has_perm("tailored.look_up_visitors")
    page, errors = change_kind_to_number(client, user)
    assert "3 visitor(s) have a stored value that would not fit. Send the new values" in errors
    for email in EMAILS:
        assert email not in page


def test_an_editor_who_may_look_up_visitors_reads_examples_of_the_values(client):
    user = trait_editor(("tailored", "look_up_visitors"))
    page, errors = change_kind_to_number(client, user)
    assert '3 visitor(s) have a stored value that would not fit (e.g. "' in errors
    assert all(f'"{email}"' in errors for email in EMAILS)
