"""The persona admin: editors rename personas (never add one by hand) and turn one into a
segment after seeing the proposed rule, its fidelity and its reach; without a usable model the
page says so instead of failing."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from tailored import services
from tailored.core.rules import compile_rule
from tailored.events.schema import EVENT_TYPES
from tailored.ml import registry
from tailored.ml.catalog import CatalogItem
from tailored.ml.features import PERSONA_FEATURES, feature_matrix, select
from tailored.ml.persona_rules import propose_rule
from tailored.ml.personas import fit_personas
from tailored.ml.synthetic import generate_histories
from tailored.ml.training import PERSONAS, profiles_at, sync_persona_labels
from tailored.models import PersonaLabel, Segment
from tailored.rule_sentences import sentence

pytestmark = pytest.mark.django_db

CATALOG = [
    CatalogItem(str(pk), f"Item {pk}", category, tags=(f"t{pk % 4}",), price=float(5 + 7 * (pk % 9)))
    for pk, category in enumerate(["books", "outdoors", "beauty", "fashion"] * 6, start=1)
]


def url(name: str, *args) -> str:
    return reverse(PersonaLabel.snippet_viewset.get_url_name(name), args=args)


@pytest.fixture(scope="module")
def population():
    now = time.time()
    histories = generate_histories(CATALOG, visitors=200, days=20, seed=8, now=now)
    profiles = profiles_at({h.visitor_id: h.events for h in histories}, now)
    model = fit_personas(select(feature_matrix(list(profiles.values()), now), PERSONA_FEATURES), seed=3, k_range=(3, 4))
    return histories, model


@pytest.fixture
def site(settings, tmp_path):
    settings.PERSONALIZATION = {
        "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore",
        "MODEL_DIR": str(tmp_path / "models"),
        "MODEL_RELOAD_SECONDS": 0,
    }
    return tmp_path / "models"


@pytest.fixture
def trained(site, population):
    """A published persona model, its labels, and live profiles (active in the last day) to count."""
    from tailored import conf

    histories, model = population
    version = registry.publish(PERSONAS, model, {"features": list(PERSONA_FEATURES)})
    sync_persona_labels(model, version)
    store, now = conf.get_profile_store(), time.time()
    for history in histories[:60]:
        shift = now - 60 - history.events[-1].ts  # each visitor's last event a minute ago
        store.record(history.visitor_id, [replace(e, ts=e.ts + shift) for e in history.events], now)
    return model, version


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.get(username="editor"))
    return client


def test_personas_are_listed_and_editors_rename_them_without_touching_the_slug(admin_client, trained):
    model, _ = trained
    listing = admin_client.get(url("list"))
    assert listing.status_code == 200
    for persona in model.personas:
        assert persona.name in listing.content.decode()
    label = PersonaLabel.objects.get(slug=model.personas[0].slug)
    response = admin_client.post(url("edit", label.pk), {"name": "Deal seekers", "slug": "hacked"})
    assert response.status_code == 302
    label.refresh_from_db()
    assert label.name == "Deal seekers" and label.slug == model.personas[0].slug


def test_personas_come_from_training_and_cannot_be_added_by_hand(admin_client, trained):
    assert admin_client.get(url("add")).status_code in (302, 403)
    assert url("add") not in admin_client.get(url("list")).content.decode()


def test_the_proposal_shows_the_rule_its_fidelity_and_its_reach(admin_client, trained):
    model, _ = trained
    reach = {p.slug: services.live_count(compile_rule(propose_rule(model, p.slug).rule, EVENT_TYPES))[0] for p in model.personas}
    label = PersonaLabel.objects.get(slug=max(reach, key=reach.get))
    assert reach[label.slug] > 0
    edit = BeautifulSoup(admin_client.get(url("edit", label.pk)).content, "html.parser")
    assert edit.select_one("[data-make-segment]")["href"] == url("make_segment", label.pk)
    page = BeautifulSoup(admin_client.get(url("make_segment", label.pk)).content, "html.parser")
    proposal = propose_rule(model, label.slug)
    rule = json.loads(page.select_one("[data-persona-rule]").text)
    assert rule == proposal.rule
    compile_rule(rule, known_events=EVENT_TYPES)
    # The same renderer as the ?explain=1 panel's (issue 16 item 4), in words, not field names.
    shown = page.select_one("[data-persona-sentence]").text
    assert shown == sentence(proposal.rule) and shown.startswith("Visitors ")
    assert "profile." not in shown and "page_view" not in shown
    assert f"{round(proposal.accuracy * 100)}%" in page.select_one("[data-persona-fidelity]").text
    assert f"{reach[label.slug]} of 60 visitors active in the last 24 hours" in page.select_one("[data-persona-reach]").text


def test_saving_creates_a_segment_and_opens_it_in_the_rule_builder(admin_client, trained):
    model, _ = trained
    label = PersonaLabel.objects.get(slug=model.personas[1].slug)
    response = admin_client.post(url("make_segment", label.pk))
    segment = Segment.objects.get(slug=f"persona-{label.slug}")
    assert response.status_code == 302
    assert response["Location"] == reverse(Segment.snippet_viewset.get_url_name("edit"), args=[segment.pk])
    assert segment.rule == propose_rule(model, label.slug).rule and not segment.enabled
    assert segment.name == label.name and "Agrees with the clustering" in segment.description
    assert admin_client.get(response["Location"]).status_code == 200
    admin_client.post(url("make_segment", label.pk), {"enabled": "on"})
    assert Segment.objects.get(slug=f"persona-{label.slug}-2").enabled  # a second save: a free slug


def test_without_a_persona_model_the_page_explains_instead_of_failing(admin_client, site, caplog):
    label = PersonaLabel.objects.create(slug="researcher", name="Researcher")
    with caplog.at_level(logging.WARNING, logger="tailored.ml.registry"):
        response = admin_client.get(url("make_segment", label.pk))
    assert response.status_code == 200 and "No persona model is available yet" in response.content.decode()
    assert admin_client.post(url("make_segment", label.pk)).status_code == 200
    assert not Segment.objects.filter(slug__startswith="persona-").exists()


def test_a_corrupt_model_file_is_a_logged_warning_and_an_explanation(admin_client, trained, site, caplog):
    _, version = trained
    (site / PERSONAS / version / "artifact.joblib").write_bytes(b"\x80garbage")
    label = PersonaLabel.objects.first()
    with caplog.at_level(logging.WARNING, logger="tailored.ml.registry"):
        response = admin_client.get(url("make_segment", label.pk))
    assert response.status_code == 200 and "No persona model is available yet" in response.content.decode()
    assert "could not be loaded" in caplog.text


def test_making_a_segment_needs_the_add_segment_permission(client, trained):
    user = get_user_model().objects.create_user("viewer", password="x")
    user.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(user)
    label = PersonaLabel.objects.first()
    # Wagtail turns PermissionDenied in the admin into a redirect to the dashboard with a message.
    denied = client.get(url("make_segment", label.pk))
    assert denied.status_code == 302 and denied["Location"] == reverse("wagtailadmin_home")
    client.post(url("make_segment", label.pk))
    assert not Segment.objects.filter(slug__startswith="persona-").exists()
