"""Who may read the personalization reports (Reports -> Personalization insights, Personalization
lift, Experiments, and the dashboard's alerts): editors with the `view_personalization_reports`
permission. They show how the business does (traffic, conversions, lift), which not every editor
who can reach the admin should see. Migration 0013 gave the permission to every group that could
reach the admin then, so an upgrade changes no one's access; a site takes it away per group."""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from wagtail.admin.menu import MenuItem

PERMISSION = "tailored.view_personalization_reports"
REFUSAL = "The personalization reports need the “Can view the personalization reports” permission."


def can_view_reports(user) -> bool:
    return bool(user is not None and user.has_perm(PERMISSION))


def reports_only(view):
    """A view that answers 403 to editors without the permission."""

    @wraps(view)
    def checked(request: HttpRequest, *args, **kwargs):
        if not can_view_reports(request.user):
            raise PermissionDenied(REFUSAL)
        return view(request, *args, **kwargs)

    return checked


class ReportMenuItem(MenuItem):
    """A Reports menu item shown only to editors who may open it."""

    def is_shown(self, request: HttpRequest) -> bool:
        return can_view_reports(request.user)
