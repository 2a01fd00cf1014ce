"""The personalization reports (insights, lift, experiments, the dashboard's alerts) need the
`view_personalization_reports` permission; groups that could reach the admin before keep them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from wagtail import hooks
from wagtail.models import GroupPagePermission, Page

from tailored.experiments.models import Experiment
from tailored.models import Alert
from tailored.report_access import PERMISSION
from tests.experiments.conftest import make_experiment

pytestmark = pytest.mark.django_db

REPORTS = ["/admin/insights/", "/admin/personalization-lift/", "/admin/experiments/"]
ALERT = "CTR of the spring hero fell by half"


@pytest.fixture
def editor_without_reports(client):
    user = get_user_model().objects.create_user("writer", password="x")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="wagtailadmin", codename="access_admin"))
    client.force_login(user)
    return user


def grant_reports(user) -> None:
    user.user_permissions.add(Permission.objects.get(content_type__app_label="tailored", codename="view_personalization_reports"))


def in_menu(url: str, html: str) -> bool:
    return f'"url": "{url}"' in html  # the sidebar's menu is JSON in the page


def open_alert() -> None:
    Alert.objects.create(kind=Alert.Kind.CTR, key="k", direction="drop", since=datetime.now(UTC), baseline=0.05, observed=0.025, message=ALERT)


def test_groups_that_could_reach_the_admin_keep_the_reports():
    """The permission's migration gave it to every group with admin access (an upgrade takes
    nothing away), and Wagtail's group screen offers it, so a site can take it away."""
    for name in ("Editors", "Moderators"):
        assert Group.objects.get(name=name).permissions.filter(codename="view_personalization_reports").exists()
    offered = {permission.codename for hook in hooks.get_hooks("register_permissions") for permission in hook()}
    assert {"view_personalization_reports", "look_up_visitors"} <= offered


def test_an_editor_without_the_permission_is_refused_every_report(client, editor_without_reports):
    open_alert()
    for url in REPORTS:
        # Wagtail turns PermissionDenied in the admin into a redirect to the dashboard, with a message.
        response = client.get(url)
        assert (response.status_code, response["Location"]) == (302, reverse("wagtailadmin_home")), url
    dashboard = client.get(reverse("wagtailadmin_home")).content.decode()
    assert not any(in_menu(url, dashboard) for url in REPORTS)
    assert ALERT not in dashboard
    grant_reports(editor_without_reports)
    assert [client.get(url).status_code for url in REPORTS] == [200, 200, 200]
    dashboard = client.get(reverse("wagtailadmin_home")).content.decode()
    assert ALERT in dashboard and all(in_menu(url, dashboard) for url in REPORTS)


def test_who_may_publish_the_page_sees_the_experiments_results_without_the_permission(client, editor_without_reports):
    experiment = make_experiment(status=Experiment.Status.DRAFT)
    detail = f"/admin/experiments/{experiment.pk}/"
    assert client.get(detail).status_code == 302
    publishers = Group.objects.create(name="Publishers")
    for kind in ("change", "publish"):
        GroupPagePermission.objects.create(group=publishers, page=Page.objects.get(depth=1), permission_type=kind)
    editor_without_reports.groups.add(publishers)
    assert not get_user_model().objects.get(pk=editor_without_reports.pk).has_perm(PERMISSION)
    response = client.get(detail)
    assert response.status_code == 200 and experiment.name in response.content.decode()
    assert client.get("/admin/experiments/").status_code == 302  # the list of every experiment is a report
