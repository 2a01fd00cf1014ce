"""The experiment results page reads at 1280 px (issue 16 item 2): the table fits Wagtail's
content column (no horizontal scroll, every figure visible), and Promote asks before acting on
an arm without a conclusive lift."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.e2e.conftest import DESKTOP_CHROME
from tests.e2e.test_editor_journey import SCREENSHOTS, log_in
from tests.experiments.conftest import make_experiment
from tests.experiments.test_admin import counts


def test_the_results_table_fits_1280_px_and_a_risky_promote_asks_first(site_url, browser: Browser):
    experiment = make_experiment(arms=[("control", 34, {"variant": "fallback"}), ("curious", 33, {"variant": "1"}), ("bold", 33, {"variant": "2"})])
    counts(experiment, "control", 1000, 100)
    counts(experiment, "curious", 1000, 140)
    counts(experiment, "bold", 1000, 90)
    context = browser.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, site_url)
    page.goto(f"{site_url}/admin/experiments/{experiment.pk}/")

    table = page.locator("[data-tl-results]")
    # Wagtail's content column is 920 px wide at 1280 px, and clips what overflows it.
    column = table.evaluate("t => { const p = t.parentElement, s = getComputedStyle(p); return p.getBoundingClientRect().right - parseFloat(s.paddingRight); }")
    right = table.evaluate("t => Math.max(...[...t.querySelectorAll('th, td, button')].map(e => e.getBoundingClientRect().right))")
    assert right <= column + 1, (right, column)
    assert page.locator("[data-tl-verdict]").inner_text().startswith("No conclusion yet")
    page.screenshot(path=str(SCREENSHOTS / "experiment-results.png"), full_page=True)

    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator('[data-tl-promote="risky"] button', has_text="Promote curious").click()
    assert asked and "no conclusive lift yet" in asked[0]
    experiment.refresh_from_db()
    assert not experiment.winner  # dismissed: nothing promoted
    context.close()
