"""Preview names the device from the preview pane's width, or the one the editor picks (issue 16
item 4), on the server: the `tl_preview_device` cookie the scripts set from the pane's width is
the device of an audience that names none, and of an editor previewing as themselves; a device the
editor picked (or a preview mode names) wins; the summary says which device and why, and which
segments the audience is in only because of its context."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from cms.models import HomePage
from tailored.frontend.preview import (
    AUDIENCE_COOKIE,
    DEVICE_COOKIE,
    MOBILE_BELOW,
    TABLET_BELOW,
    derived_sentence,
    device_for_width,
)

pytestmark = pytest.mark.django_db

APP_CTA = "Get the app"  # the homepage's variant for mobile devices


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def preview(client, mode: str | None = None) -> tuple[str, BeautifulSoup]:
    home = HomePage.objects.get()
    url = reverse("wagtailadmin_pages:revisions_view", args=[home.pk, home.latest_revision_id])
    html = client.get(url if mode is None else f"{url}?mode={quote(mode)}").content.decode()
    return html, BeautifulSoup(html, "html.parser")


def summary(page: BeautifulSoup) -> str:
    return page.select_one("[data-tl-audience-summary]").text


def test_an_audience_without_a_device_takes_the_preview_panes(editor):
    editor.cookies[DEVICE_COOKIE] = "mobile"
    html, page = preview(editor, "segments=electronics-fans")
    assert summary(page) == "Electronics fans · mobile, from the preview's width"
    assert APP_CTA in html  # rendered for a phone
    form = page.select_one("[data-tl-audience]")
    assert form["data-pane-device"] == "mobile" and form["data-device-explicit"] == "false"
    assert form["data-device-cookie"] == DEVICE_COOKIE


def test_before_the_width_is_known_it_is_desktop_and_says_so(editor):
    html, page = preview(editor, "segments=electronics-fans")
    assert summary(page) == "Electronics fans · desktop, until the preview's width is known"
    assert APP_CTA not in html
    assert page.select_one("[data-tl-audience]")["data-pane-device"] == ""


def test_a_device_the_editor_picked_wins_over_the_panes(editor):
    editor.cookies[DEVICE_COOKIE] = "mobile"
    editor.cookies[AUDIENCE_COOKIE] = quote("segments=outdoors-fans&device=desktop")
    html, page = preview(editor)
    assert summary(page) == "Outdoors fans · desktop, picked"
    assert APP_CTA not in html
    assert page.select_one("[data-tl-audience]")["data-device-explicit"] == "true"
    assert page.select_one('select[name="device"] option[selected]')["value"] == "desktop"
    html, page = preview(editor, "device=tablet")
    assert summary(page) == "no segment · tablet, set by the preview mode"


def test_the_device_select_offers_the_panes_width_by_default(editor):
    editor.cookies[DEVICE_COOKIE] = "tablet"
    editor.cookies[AUDIENCE_COOKIE] = quote("segments=outdoors-fans")
    _, page = preview(editor)
    select = page.select_one('select[name="device"]')
    first = select.select_one("option")
    assert (first["value"], first.text) == ("", "From the preview's width")
    assert select.select_one("option[selected]") is None  # the first option, the pane's width, is chosen
    assert summary(page) == "Outdoors fans · tablet, from the preview's width"


def test_previewing_as_yourself_uses_the_panes_device(editor):
    html, page = preview(editor)
    assert summary(page) == "yourself (your own cookies and device)"
    assert APP_CTA not in html  # the test client is a desktop browser
    editor.cookies[DEVICE_COOKIE] = "mobile"
    html, page = preview(editor)
    assert summary(page) == "yourself (your own cookies) · mobile, from the preview's width"
    assert APP_CTA in html


def test_a_device_cookie_that_is_not_a_preview_device_is_ignored(editor):
    for value in ("bot", "phone", "MOBILE;x"):
        editor.cookies[DEVICE_COOKIE] = value
        _, page = preview(editor, "segments=electronics-fans")
        assert summary(page).endswith("desktop, until the preview's width is known"), value


def test_the_summary_says_why_the_audience_is_in_segments_nobody_picked(editor):
    editor.cookies[DEVICE_COOKIE] = "mobile"
    editor.cookies[AUDIENCE_COOKIE] = quote("segments=electronics-fans&daypart=evening")
    _, page = preview(editor)
    derived = page.select_one("[data-tl-audience-derived]").text
    assert derived == (
        "Also in Mobile visitors and New visitors: their rules hold for this context"
        " (a visitor with no history, on this device, at this time)."
    )
    assert "Electronics fans" not in derived  # picked, so not explained as derived


def test_the_new_visitor_mode_names_no_device():
    assert derived_sentence(["New visitors"]).startswith("Also in New visitors: its rule holds for this context")
    assert derived_sentence([]) == ""
    modes = dict(HomePage.objects.get().preview_modes)
    assert modes["segments="] == "A new visitor with no segment"


def test_the_new_visitor_mode_previews_on_the_panes_device(editor):
    editor.cookies[DEVICE_COOKIE] = "mobile"
    html, page = preview(editor, "segments=")
    assert summary(page) == "no segment · mobile, from the preview's width"
    assert APP_CTA in html


def test_widths_map_to_devices_at_wagtails_preview_sizes():
    assert [device_for_width(w) for w in (375, MOBILE_BELOW - 1, MOBILE_BELOW, 768, TABLET_BELOW - 1, TABLET_BELOW, 1280)] == [
        "mobile", "mobile", "tablet", "tablet", "tablet", "desktop", "desktop",
    ]


def test_the_scripts_use_the_same_widths_as_the_server(editor):
    _, page = preview(editor)
    picker_script = page.select_one("form[data-tl-audience] + script").text
    editor_script = (Path(__file__).parents[2] / "frontend" / "static" / "tailored" / "preview_size.js").read_text()
    for script in (picker_script, editor_script):
        assert re.search(rf"< {MOBILE_BELOW} \? \"mobile\" : \w+ < {TABLET_BELOW} \? \"tablet\" : \"desktop\"", script)


def test_the_page_editor_loads_the_script_that_follows_the_pane_size(editor):
    home = HomePage.objects.get()
    html = editor.get(reverse("wagtailadmin_pages:edit", args=[home.pk])).content.decode()
    assert f'tailored/preview_size.js" data-cookie="{DEVICE_COOKIE}"' in html
