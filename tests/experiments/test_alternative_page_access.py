"""A whole-page experiment serves its alternative at the original URL: that must not publish a
page the editor may not edit, nor show a login-only (or password, or group) page to a visitor who
may not see it at its own URL, over SSR or GraphQL."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from wagtail.models import GroupPagePermission, PageViewRestriction

from cms.models import HomePage, LandingPage
from tailored.experiments.models import Experiment
from tests.conftest import DESKTOP_UA
from tests.experiments.conftest import make_experiment, post_page_experiments, running, visitor_in
from tests.helpers import consent_cookies

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def landing(slug: str, text: str) -> LandingPage:
    page = LandingPage(title=slug.title(), slug=slug, intro="", body=[{"type": "rich_text", "value": f"<p>{text}</p>"}])
    HomePage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    return page


def a_editor(page) -> Client:
    group = Group.objects.create(name="A editors")
    group.permissions.add(Permission.objects.get(content_type__app_label="wagtailadmin", codename="access_admin"))
    for codename in ("add_page", "change_page", "publish_page"):
        permission = Permission.objects.get(codename=codename, content_type__app_label="wagtailcore")
        GroupPagePermission.objects.create(group=group, page=page, permission=permission)
    user = get_user_model().objects.create_user("a-editor", password="x")
    user.groups.add(group)
    editor = Client(HTTP_USER_AGENT=DESKTOP_UA)
    editor.force_login(user)
    return editor


def publish_with_page_test(editor, page, alternative):
    experiment = {"name": "Swap", "key": "swap-a-b", "target": "page"}
    arms = [{"key": "control", "weight": "1"}, {"key": "alt", "weight": "99", "alternative_page": str(alternative.pk)}]
    return post_page_experiments(editor, page, [experiment], [arms])


def test_an_editor_cannot_choose_an_alternative_page_they_may_not_edit():
    a, b = landing("page-a", "public A"), landing("page-b", "B, edited by others")
    editor = a_editor(a)
    response = publish_with_page_test(editor, a, b)
    assert response.status_code == 200
    assert "You may not edit “Page-B”: choose a page you may edit." in response.content.decode()
    assert not Experiment.objects.filter(key="swap-a-b").exists()


def test_an_editor_may_choose_a_page_they_may_edit():
    a = landing("page-a", "public A")
    b = LandingPage(title="Page B", slug="page-b", intro="", body=[])
    a.add_child(instance=b)  # under A: the editor's permissions reach it
    b.save_revision().publish()
    editor = a_editor(a)
    assert publish_with_page_test(editor, a, b).status_code == 302
    assert Experiment.objects.filter(key="swap-a-b").exists()


@pytest.fixture
def restricted_alternative(client):
    public, secret = landing("public-a", "public A"), landing("secret-b", "TOP SECRET B")
    PageViewRestriction.objects.create(page=secret, restriction_type=PageViewRestriction.LOGIN)
    assert client.get(secret.url).status_code == 302  # refused at its own URL
    make_experiment(page=public, key="page-test", target=Experiment.Target.PAGE,
                    arms=[("control", 1, {}), ("alt", 1, {"alternative_page": secret})])
    consent_cookies(client, visitor_in(running("page-test"), "alt"))
    return public


def test_a_restricted_alternative_is_not_served_to_a_visitor_it_refuses(client, restricted_alternative):
    body = client.get(restricted_alternative.url).content.decode()
    assert "TOP SECRET B" not in body and "public A" in body


def test_nor_over_graphql(client, restricted_alternative):
    query = "query($p: String!) { page(urlPath: $p) { title } }"
    response = client.post("/graphql/", {"query": query, "variables": {"p": restricted_alternative.url_path}}, content_type="application/json")
    assert response.json()["data"]["page"]["title"] == "Public-A"


def test_a_visitor_the_restriction_accepts_gets_the_alternative(client, restricted_alternative, django_user_model):
    """Logged in, a member is bucketed by their user's id: some of the first members are in the
    alternative's arm, and they get it."""
    bodies = []
    for number in range(12):
        client.force_login(django_user_model.objects.create_user(f"member{number}", password="x"))
        bodies.append(client.get(restricted_alternative.url).content.decode())
    assert any("TOP SECRET B" in body for body in bodies) and any("public A" in body for body in bodies)
