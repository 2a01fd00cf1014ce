"""tailored.identify(email) from the page (issue 20 item 3): after "Accept all" (which grants
marketing) the visitor is known with their address; after declining, nothing is stored."""

from __future__ import annotations

from playwright.sync_api import expect

from tailored.activation.models import KnownVisitor
from tests.e2e.conftest import DESKTOP_CHROME

IDENTIFY = "tailored.identify('Ada@Example.com').then(r => r, e => ({failed: String(e)}))"


def test_identify_after_accepting_all_records_the_visitor_with_their_address(site_url, browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    page.goto(site_url + "/")
    page.get_by_role("button", name="Accept all").click()
    expect(page.locator("body")).to_have_attribute("data-tl-consent", "granted")

    assert page.evaluate(IDENTIFY) == {"identified": True, "email_kept": True}
    [known] = KnownVisitor.objects.all()
    assert (known.email, known.marketing) == ("ada@example.com", True)
    context.close()


def test_identify_after_declining_stores_nothing(site_url, browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    page.goto(site_url + "/")
    page.get_by_role("button", name="Decline all").click()
    expect(page.locator("body")).not_to_have_attribute("data-tl-consent", "granted")

    answer = page.evaluate(IDENTIFY)
    assert answer["error"] == "consent_required"  # the server's 403, passed on to the page
    assert not KnownVisitor.objects.exists()
    context.close()
