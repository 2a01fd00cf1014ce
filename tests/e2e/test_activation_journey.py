"""Activation in the admin, end to end (issue 20): the editor makes a webhook destination and a
"churn risk above 0.7" trigger through the forms; a known visitor who granted marketing gets a
churn risk of 0.82, the stream worker processes their next batch and delivers one signed POST to
a local HTTP server; the editor sees the delivered send in the Activation log."""

from __future__ import annotations

import json
import time

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from tailored import conf, webhooks, worker
from tailored.activation import triggers
from tailored.activation.models import KnownVisitor, Trigger
from tailored.core.types import Event
from tests.activation.conftest import Receiver, drain
from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_editor_journey import log_in

VISITOR = "c4" * 16
SECRET = "journey-secret"


@pytest.fixture
def hook_server():
    server = Receiver([200])
    yield server
    server.close()


def open_activation(page: Page, site_url: str, screen: str) -> None:
    page.goto(f"{site_url}/admin/")
    page.get_by_role("button", name="Activation").click()
    page.get_by_role("link", name=screen, exact=True).click()


def add_webhook_destination(page: Page, site_url: str, url: str) -> None:
    open_activation(page, site_url, "Destinations")
    page.get_by_role("link", name="Add destination").first.click()
    page.get_by_label("Name").fill("CRM hook")
    page.get_by_label("Kind").select_option(label="Signed webhook")
    page.get_by_label("URL", exact=True).fill(url)
    page.get_by_label("Secret").fill(SECRET)
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".messages")).to_contain_text("CRM hook")


def add_churn_trigger(page: Page, site_url: str) -> None:
    open_activation(page, site_url, "Triggers")
    page.get_by_role("link", name="Add trigger").first.click()
    page.get_by_label("Name").fill("Churn risk above 0.7")
    page.get_by_label("Kind").select_option("score_above")
    # The form shows the chosen kind's fields only.
    expect(page.get_by_label("Minutes")).to_be_hidden()
    expect(page.get_by_label("Segment")).to_be_hidden()
    page.get_by_label("Score", exact=True).fill("churn_risk")
    page.get_by_label("Threshold").fill("0.7")
    page.get_by_label("Destination").select_option(label="CRM hook")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".messages")).to_contain_text("Churn risk above 0.7")


def churn_rises_and_the_worker_runs(personalization) -> None:
    """The known visitor's next batch arrives after the model scored them at 0.82; one worker pass."""
    personalization(WEBHOOK_TIMEOUT_SECONDS=2, SEGMENT_REFRESH_SECONDS=0)
    triggers.trigger_cache.invalidate()
    store = conf.get_profile_store()
    worker.ensure_group(store.client)
    KnownVisitor.objects.create(visitor_id=VISITOR, email_hash="0" * 64, marketing=True, identified_at=timezone.now())
    now = time.time()
    view = Event("churn-view-1", "page_view", ts=now, category="electronics", item="1", attrs={"page_type": "product"})
    store.record(VISITOR, [view], now)  # the profile, and the entry on the stream
    store.set_model_outputs({VISITOR: (None, {"churn_risk": 0.82})})
    drain(now)


def test_an_editor_sets_up_a_churn_trigger_and_sees_its_delivery(site_url, browser: Browser, hook_server, personalization):
    context = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, site_url)
    add_webhook_destination(page, site_url, hook_server.url + "/hook")
    add_churn_trigger(page, site_url)
    assert Trigger.objects.get(name="Churn risk above 0.7").params == {"score": "churn_risk", "threshold": 0.7}

    churn_rises_and_the_worker_runs(personalization)
    [(method, path, headers, body)] = hook_server.requests
    assert (method, path) == ("POST", "/hook")
    assert webhooks.verify_signature(SECRET, body, headers["X-Tailored-Signature"])
    payload = json.loads(body)
    assert (payload["visitor_id"], payload["reason"]) == (VISITOR, {"score": "churn_risk", "value": 0.82, "threshold": 0.7})

    open_activation(page, site_url, "Activation log")
    row = page.locator("tbody tr", has_text="Churn risk above 0.7")
    expect(row).to_contain_text("Delivered")
    expect(row).to_contain_text(VISITOR[:8] + "…")
    context.close()
