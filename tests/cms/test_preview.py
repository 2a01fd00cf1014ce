"""Preview as an audience in SSR: an editor previewing as a segment or a context sees that
variant; nobody else can choose an audience, and public pages ignore the parameters."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from cms.models import HomePage, LandingPage
from tailored.frontend.preview import (
    AUDIENCE_COOKIE,
    Audience,
    apply_audience,
    audience_visitor,
    parse_audience,
)
from tailored.services import resolve_visitor
from tests.conftest import DESKTOP_UA

pytestmark = pytest.mark.django_db

ELECTRONICS_HERO = "The latest in electronics, picked for you"
FALLBACK_HERO = "Good things for every day"


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def preview_url(page, mode: str | None = None) -> str:
    url = reverse("wagtailadmin_pages:revisions_view", args=[page.pk, page.latest_revision_id])
    return url if mode is None else f"{url}?mode={quote(mode)}"


def test_an_editor_previewing_as_a_segment_sees_its_variant(editor):
    home = HomePage.objects.get()
    html = editor.get(preview_url(home, "segments=electronics-fans")).content.decode()
    assert ELECTRONICS_HERO in html and FALLBACK_HERO not in html
    assert "Previewing as <strong data-tl-audience-summary>Electronics fans · desktop" in html
    assert "Variant: Electronics fans" in html  # each section says which variant this audience gets


def test_an_editor_previewing_as_a_context_sees_its_variants(editor):
    home = HomePage.objects.get()
    html = editor.get(preview_url(home, "device=mobile")).content.decode()
    assert "Get the app" in html and FALLBACK_HERO in html
    landing = LandingPage.objects.get(slug="good-morning")
    html = editor.get(preview_url(landing, "country=GB&daypart=evening")).content.decode()
    assert "Evening, Britain." in html
    html = editor.get(preview_url(landing, "country=GB-ENG&daypart=morning")).content.decode()
    assert "Good morning, Britain!" in html


def test_the_picker_cookie_sets_the_audience_of_the_default_mode(editor):
    home = HomePage.objects.get()
    editor.cookies[AUDIENCE_COOKIE] = quote("segments=outdoors-fans&device=mobile")
    html = editor.get(preview_url(home)).content.decode()
    assert "Ready for the trail?" in html and "Get the app" in html
    assert 'data-tl-audience aria-label="Preview as an audience"' in html
    # A preset mode wins over the picker.
    assert ELECTRONICS_HERO in editor.get(preview_url(home, "segments=electronics-fans")).content.decode()


def test_without_an_audience_the_editor_previews_as_themselves(editor):
    html = editor.get(preview_url(HomePage.objects.get())).content.decode()
    assert FALLBACK_HERO in html and "yourself" in html


def test_preview_modes_offer_one_audience_per_segment():
    modes = dict(HomePage.objects.get().preview_modes)
    assert modes[""].startswith("Audience picked in the preview")
    assert modes["segments=electronics-fans"] == "As Electronics fans"


def test_public_pages_ignore_the_audience_parameters_and_cookie(client):
    client.cookies[AUDIENCE_COOKIE] = "segments=electronics-fans"
    html = client.get("/?mode=segments%3Delectronics-fans&segments=electronics-fans&tl_segments=electronics-fans").content.decode()
    assert FALLBACK_HERO in html and ELECTRONICS_HERO not in html
    assert "data-tl-audience" not in html


def test_a_logged_in_visitor_who_is_not_an_editor_cannot_preview(client, django_user_model):
    user = django_user_model.objects.create_user("shopper", password="x")
    client.force_login(user)
    response = client.get(preview_url(HomePage.objects.get(), "segments=electronics-fans"))
    assert response.status_code in (302, 403)
    assert ELECTRONICS_HERO not in response.content.decode()


def test_serve_preview_ignores_the_audience_for_non_editors(django_user_model):
    home = HomePage.objects.get()
    for user in (AnonymousUser(), django_user_model.objects.create_user("viewer", password="x")):
        request = RequestFactory().get("/", HTTP_USER_AGENT=DESKTOP_UA)
        request.user = user
        request.COOKIES[AUDIENCE_COOKIE] = "segments=electronics-fans"
        request.visitor = SimpleLazyObject(lambda request=request: resolve_visitor(request))
        assert apply_audience(request, "segments=electronics-fans") is None
        assert not hasattr(request, "_tailored_visitor")
        html = home.serve_preview(request, "segments=electronics-fans").render().content.decode()
        assert ELECTRONICS_HERO not in html


def test_audiences_are_validated_and_round_trip():
    audience = parse_audience("segments=electronics-fans,nope&device=bot&daypart=teatime&weekday=SAT&country=us-ca&weather=rain&campaign=Spring Sale", {"electronics-fans"})
    assert audience == Audience(
        segments=frozenset({"electronics-fans"}), device=None, weekday="sat", country="US", region="US-CA",
        weather="rain", campaign="spring-sale",
    )
    assert parse_audience(audience.as_query()) == audience
    assert parse_audience("country=England").country is None


def test_the_synthetic_visitor_is_in_the_segments_its_context_implies():
    visitor = audience_visitor(parse_audience("device=mobile&daypart=morning"))
    assert {"mobile-visitors", "mobile-morning-visitors"} <= visitor.segments
    assert visitor.id is None and visitor.profile.page_views == 0
