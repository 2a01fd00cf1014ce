"""The privacy centre (issue 15 item 6): linked from the demo's footer and the banner, it shows a
visitor their choice and what each category means, lets them change it, download what is held
about them and erase it, with plain HTML forms and links (no API, no developer tools)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from django.template import engines

from tailored.core.types import Consent
from tailored.frontend.privacy import category_rows, stored_entries
from tailored.models import DataRightsAudit
from tests.frontend.test_template_languages import normalised

from .conftest import answer_consent, electronics_views, redis_keys, visitor_id_of

pytestmark = pytest.mark.django_db

PRIVACY_CENTRE = "/privacy-centre/"


def checked(html: str) -> dict[str, bool]:
    """Each category checkbox of the privacy centre's form: ticked or not."""
    form = html[html.index('class="tl-privacy"'):]
    boxes = re.findall(r'<input type="checkbox" name="(\w+)" value="on"( checked)?', form)
    return {name: bool(tick) for name, tick in boxes}


def test_an_undecided_visitor_sees_the_categories_unticked_and_gets_no_cookie(client):
    response = client.get(PRIVACY_CENTRE)
    html = response.content.decode()
    assert response.status_code == 200 and not response.cookies
    assert "You have not chosen yet" in html and "Nothing is held about you." in html
    assert checked(html) == {"necessary": True, "analytics": False, "personalization": False, "marketing": False}
    assert "Download my data" not in html
    assert 'class="consent-banner"' not in html  # the page's own form replaces the banner


def test_the_demo_links_the_privacy_centre_from_every_page_and_the_banner(client):
    html = client.get("/").content.decode()
    footer = html[html.index('<footer class="site-footer">'):]
    assert f'<a href="{PRIVACY_CENTRE}" data-track="privacy-centre">Privacy centre</a>' in footer
    banner = html[html.index('class="consent-banner"'):html.index("</form>", html.index('class="consent-banner"'))]
    assert f'<a href="{PRIVACY_CENTRE}">Privacy centre</a>' in banner
    assert "Accept all" in banner and "Decline all" in banner and "Save choices" in banner


def test_a_visitor_changes_their_choice_at_any_time(client, backend):
    answer_consent(client)(analytics=True, personalization=True)
    form = {"choice": "save", "analytics": "on", "next": f"{PRIVACY_CENTRE}?notice=saved"}
    response = client.post("/consent/", form, follow=True)
    html = response.content.decode()
    assert client.cookies["tl_consent"].value == "analytics"
    assert "Your choice is saved." in html and "You allowed analytics." in html
    assert checked(html) == {"necessary": True, "analytics": True, "personalization": False, "marketing": False}


def test_download_gives_everything_held_as_a_json_file(client, backend):
    answer_consent(client)(analytics=False, personalization=True)
    visitor_id = visitor_id_of(client)
    electronics_views(client)
    html = client.get(PRIVACY_CENTRE).content.decode()
    assert 'href="/privacy-centre/data"' in html and "Erase my data" in html
    response = client.get("/privacy-centre/data")
    assert response["Content-Disposition"] == 'attachment; filename="my-data.json"'
    data = json.loads(response.content)
    assert data["visitor_id"] == visitor_id
    assert data["consent"] == {"analytics": False, "personalization": True, "marketing": False}
    assert data["profile"]["page_views"] == 3


def test_download_without_an_id_says_nothing_is_held(client):
    response = client.get("/privacy-centre/data", follow=True)
    assert "Nothing is held about you: no id was ever issued" in response.content.decode()


def test_erase_removes_everything_and_forgets_the_visitor(client, backend):
    answer_consent(client)(analytics=True, personalization=True)
    visitor_id = visitor_id_of(client)
    electronics_views(client)
    client.cookies["tl_tz"] = "Europe%2FLondon"
    response = client.post("/privacy-centre/erase")
    assert response.status_code == 303 and response["Location"] == f"{PRIVACY_CENTRE}?notice=erased"
    assert {name: response.cookies[name].value for name in ("tl_vid", "tl_consent", "tl_tz")} == {
        "tl_vid": "", "tl_consent": "", "tl_tz": "",
    }
    assert backend.get(visitor_id, time.time()).page_views == 0
    assert redis_keys(backend, f"*{visitor_id}*") in (None, [])
    assert DataRightsAudit.objects.filter(action="erase").count() == 1
    for name in ("tl_vid", "tl_consent", "tl_tz"):  # a browser drops deleted cookies; the test client keeps them empty
        del client.cookies[name]
    html = client.get(response["Location"]).content.decode()
    assert "Everything held about you was erased" in html and "You have not chosen yet" in html


@pytest.mark.parametrize(("method", "url"), [("get", "/privacy-centre/data"), ("post", "/privacy-centre/erase")])
def test_another_site_can_neither_download_nor_erase(client, backend, method, url):
    answer_consent(client)(analytics=True, personalization=True)
    visitor_id = visitor_id_of(client)
    electronics_views(client)
    response = getattr(client, method)(url, HTTP_SEC_FETCH_SITE="cross-site")
    assert response.status_code == 403 and not response.cookies
    assert backend.get(visitor_id, time.time()).page_views == 3
    assert not DataRightsAudit.objects.exists()


def test_under_gpc_the_centre_says_so_and_ticks_nothing(client):
    client.cookies["tl_consent"] = "analytics.personalization"
    html = client.get(PRIVACY_CENTRE, HTTP_SEC_GPC="1").content.decode()
    assert "Your browser sends Global Privacy Control or Do Not Track: analytics, personalization and marketing are off." in html
    assert checked(html) == {"necessary": True, "analytics": False, "personalization": False, "marketing": False}


def test_the_centre_lists_every_entry_the_plugin_may_store(client):
    client.cookies["tl_consent"] = "none"
    html = client.get(PRIVACY_CENTRE).content.decode()
    rows = re.findall(r"<tr><td><code>([\w]+)</code></td>.*?<td>(yes|no|-)</td></tr>", html)
    assert rows == [("tl_consent", "yes"), ("tl_vid", "no"), ("tl_tz", "no"), ("tl_queue", "-"), ("tl_dropped", "-")]


def test_the_readme_cookie_table_lists_every_entry():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme[readme.index("### Cookies and browser storage"):readme.index("### Data rights")]
    listed = set(re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE))
    assert {entry.name for entry in stored_entries()} <= listed
    assert {"csrftoken", "sessionid"} <= listed


def test_both_template_languages_render_the_same_privacy_panel():
    context = panel_context()
    django = engines["django"].get_template("tailored/privacy_panel.html").render(context)
    jinja2 = engines["jinja2"].get_template("tailored/privacy_panel.html").render(context)
    assert "Saved &lt;now&gt;" in jinja2 and 'name="analytics" value="on" checked' in jinja2
    assert normalised(django) == normalised(jinja2)


@pytest.mark.parametrize("engine", ["django", "jinja2"])
def test_a_site_without_its_own_layout_gets_the_plugins_page(engine):
    # The demo puts the panel into its layout (cms/jinja2/tailored/privacy_centre.html); the
    # plugin's own page, found after it in the template dirs, is what other sites get.
    page = plugin_page(engine, {**panel_context(), "stylesheet": "/static/tailored/blocks.css"})
    assert page.startswith("<!doctype html>") and '<link rel="stylesheet" href="/static/tailored/blocks.css">' in page
    assert '<section class="tl-privacy"' in page and "Download my data" in page


def plugin_page(engine: str, context: dict) -> str:
    folder = "templates" if engine == "django" else "jinja2"
    source = (Path(__file__).parents[2] / "frontend" / folder / "tailored" / "privacy_centre.html").read_text()
    return engines[engine].from_string(source).render(context).strip()


def panel_context() -> dict:
    return {"privacy": {
        "consent_url": "/consent/", "next": "/privacy-centre/?notice=saved", "notice": "Saved <now>",
        "summary": "You allowed analytics.", "categories": category_rows(Consent(decided=True, analytics=True)),
        "holds_data": True, "keeps_profile": False, "download_url": "/privacy-centre/data",
        "erase_url": "/privacy-centre/erase",
        "stored": [{**asdict(entry), "present": "no"} for entry in stored_entries()],
    }}
