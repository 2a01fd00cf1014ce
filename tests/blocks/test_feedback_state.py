"""Recommendation thumbs are toggle buttons (issue 16 item 6): both start un-pressed in either
template language, and blocks.css gives a pressed one its thank-you state (tracker.js presses the
voted button and un-presses the other; tests/e2e/test_preview_explain_journey.py clicks them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from django.template import engines
from django.test import RequestFactory

from cms.models import ProductPage

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).parents[2] / "frontend" / "static" / "tailored"


@pytest.mark.parametrize("engine", ["django", "jinja2"])
def test_both_thumbs_start_unpressed(engine):
    product = ProductPage.objects.live().first()
    template = engines[engine].get_template("tailored/blocks/_product_card.html")
    html = template.render({"product": product, "feedback": True}, RequestFactory().get("/"))
    buttons = BeautifulSoup(html, "html.parser").select("[data-tl-feedback]")
    assert [(b["data-tl-feedback"], b["aria-pressed"]) for b in buttons] == [("up", "false"), ("down", "false")]
    assert buttons[0].parent.find_all(recursive=False) == buttons  # tracker.js un-presses the siblings


def test_a_pressed_thumb_says_thanks_and_the_tracker_presses_it():
    css = (STATIC / "blocks.css").read_text()
    assert re.search(r'\.feedback__button\[aria-pressed="true"\]::after \{ content: " Thanks";', css)
    tracker = (STATIC / "tracker.js").read_text()
    assert 'b.setAttribute("aria-pressed", b === el)' in tracker
