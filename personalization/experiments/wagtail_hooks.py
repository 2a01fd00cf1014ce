"""Registers the experiments' admin views, their menu item and the page-serving hook."""

from __future__ import annotations

from django.urls import include, path, reverse
from wagtail import hooks

from tailored.report_access import ReportMenuItem

from .pages import serve_alternative


@hooks.register("register_admin_urls")
def register_admin_urls():
    # Imported when the admin's URLs load, not at start-up (the results need scipy's statistics).
    from . import admin_views

    return [path("experiments/", include((admin_views.urlpatterns, "tailored_experiments"), namespace="tailored_experiments"))]


@hooks.register("register_reports_menu_item")
def register_reports_menu_item():
    return ReportMenuItem("Experiments", reverse("tailored_experiments:index"), icon_name="resubmit", order=900)


@hooks.register("before_serve_page")
def before_serve_page(page, request, serve_args, serve_kwargs):
    return serve_alternative(page, request, serve_args, serve_kwargs)
