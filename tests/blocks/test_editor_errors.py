"""The page editor's mistakes (issue 16, item 1): on a page holding a Personalized block, every
validation error is Wagtail's own error page (200, "could not be saved", the field's message) with
the editor's input kept, never a 500; and autosaved drafts never duplicate variants.

Every test drives the real edit view as the demo's editor, posting what the browser posts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cms.models import HomePage, LandingPage
from tests.blocks.editor_forms import (
    add_variant,
    edit_form_data,
    fresh,
    log_in_editor,
    personalized_prefix,
    stream_state,
)

pytestmark = pytest.mark.django_db

COULD_NOT_SAVE = "The page could not be saved due to validation errors."
REQUIRED = "This field is required."
LABEL = "Spring sale for app users"
NEW_VARIANT = "5b1f0c1e-2d3a-4c5b-8e9f-16a0b0c0d001"
HOME_VARIANTS = ["0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a01", "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a02"]
HOME_HERO = [(HOME_VARIANTS[0], "Electronics fans"), (HOME_VARIANTS[1], "Outdoors fans")]  # (id, label)
SPRING_HERO = [{"type": "hero", "value": {"heading": "Spring sale", "subheading": "", "cta_label": "", "cta_url": ""}}]


@pytest.fixture
def editor(client):
    return log_in_editor(client)


@pytest.fixture
def home():
    return HomePage.objects.get()


def post(editor, page, data, action="publish"):
    data = data.copy()
    if action == "publish":
        data["action-publish"] = "action-publish"
    if action == "autosave":  # Wagtail's autosave: a plain save, asking for JSON
        return editor.post(f"/admin/pages/{page.pk}/edit/", data, HTTP_ACCEPT="application/json")
    return editor.post(f"/admin/pages/{page.pk}/edit/", data)


def personalized(html: str, page) -> tuple[list[dict], dict]:
    """The re-rendered Personalized block: its variants' form state, and its errors (or {})."""
    state, errors = stream_state(html)
    index = int(personalized_prefix(page).split("-")[1])
    block_errors = ((errors or {}).get("blockErrors") or {}).get(str(index)) or {}
    return state[index]["value"]["variants"], block_errors.get("blockErrors") or {}


def variant_errors(errors: dict, index: int) -> dict:
    return errors["variants"]["blockErrors"][str(index)]["blockErrors"]


def test_a_variant_without_content_is_an_error_with_the_variant_kept(editor, home):
    data = edit_form_data(editor, home)
    add_variant(data, home, NEW_VARIANT, label=LABEL, devices=["mobile"], starts_at="2026-03-01 09:00")
    response = post(editor, home, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert COULD_NOT_SAVE in html
    variants, errors = personalized(html, home)
    assert [v["id"] for v in variants] == [*HOME_VARIANTS, NEW_VARIANT]
    typed = variants[2]["value"]
    assert (typed["label"], typed["devices"], typed["starts_at"]) == (LABEL, ["mobile"], "2026-03-01 09:00")
    # The collapsed variant's line reads what was typed, schedule included.
    assert typed["summary"] == f"{LABEL}: mobile · from 1 Mar 2026 09:00"
    assert variant_errors(errors, 2)["content"]["messages"] == [REQUIRED]


def test_a_cleared_title_is_an_error_with_the_new_variant_kept(editor, home):
    data = edit_form_data(editor, home, title="")
    add_variant(data, home, NEW_VARIANT, content=SPRING_HERO, label=LABEL, starts_at="2026-03-01 09:00", ends_at="2026-04-01")
    response = post(editor, home, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert COULD_NOT_SAVE in html and REQUIRED in html
    variants, errors = personalized(html, home)
    assert errors == {}
    typed = variants[2]["value"]
    assert (variants[2]["id"], typed["label"], typed["ends_at"]) == (NEW_VARIANT, LABEL, "2026-04-01")
    assert typed["content"][0]["value"]["heading"] == "Spring sale"
    assert typed["summary"] == f"{LABEL}: from 1 Mar 2026 09:00 · until 1 Apr 2026 00:00"


@pytest.mark.parametrize("action", ["save", "publish"])
def test_a_deleted_fallback_shows_the_blocks_own_message(editor, home, action):
    data = edit_form_data(editor, home)
    fallback = f"{personalized_prefix(home)}-fallback"
    for index in range(int(data[f"{fallback}-count"])):
        data[f"{fallback}-{index}-deleted"] = "1"  # what the browser posts for a deleted block
    response = post(editor, home, data, action)
    assert response.status_code == 200
    html = response.content.decode()
    assert COULD_NOT_SAVE in html
    variants, errors = personalized(html, home)
    assert errors["fallback"]["messages"] == ["Add fallback content: it is what every visitor no variant matches sees."]
    assert [(v["id"], v["value"]["label"]) for v in variants] == HOME_HERO


@pytest.mark.parametrize("action", ["save", "publish"])
def test_an_untouched_landing_page_with_its_title_cleared_is_an_error(editor, action):
    landing = LandingPage.objects.get(slug="good-morning")
    before = landing.latest_revision_id
    response = post(editor, landing, edit_form_data(editor, landing, title=""), action)
    assert response.status_code == 200
    html = response.content.decode()
    assert COULD_NOT_SAVE in html and REQUIRED in html
    variants, _ = personalized(html, landing)
    assert [v["value"]["label"] for v in variants][:2] == ["UK mornings", "UK evenings"]
    assert variants[0]["value"]["summary"] == "UK mornings: morning · GB"
    assert fresh(landing).latest_revision_id == before  # nothing was saved


# Fuzz: whatever the editor types into a variant, the edit view answers with a page, never a 500.
# Each field is valid about half the time, so drafts and publications get through as well as errors.
WHEN = st.one_of(
    st.just(""),
    st.sampled_from(["2026-01-01", "2026-01-01 10:00", "2026-06-30 18:45", "2026-01-01T10:00:00+05:00", "9999-12-31 23:59"]),
    st.sampled_from(["2026-13-45", "2026-02-30 25:61", "garbage", "2026-", "10:00", " ", "0001-01-01 00:00"]),
    st.text(max_size=20),
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=90)


def tags(valid: list[str], invalid: str):
    return st.lists(st.sampled_from(valid), max_size=2, unique=True) | st.just([invalid, *valid[:1]])


variant_input = st.fixed_dictionaries(
    {
        "label": TEXT,
        "segments": tags(["electronics-fans", "outdoors-fans"], "no-such-segment"),
        "devices": tags(["mobile", "desktop", "tablet"], "phone"),
        "dayparts": tags(["morning", "evening"], "noon"),
        "regions": st.sampled_from(["", "GB", "gb, us-ca", "GB-ENG,,", "England"]),
        "campaigns": st.text(max_size=12),
        "starts_at": WHEN,
        "ends_at": WHEN,
        "summary": st.sampled_from(["", "stale summary"]),
    }
)


@pytest.fixture
def fuzz_page(editor, home):
    page = LandingPage(title="Fuzz", slug="fuzz-landing", body=[("personalized", {"variants": [], "fallback": SPRING_HERO})])
    home.add_child(instance=page)
    page.save_revision().publish()
    return page, edit_form_data(editor, page)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(typed=variant_input, with_content=st.booleans(), action=st.sampled_from(["save", "publish", "autosave"]))
def test_any_variant_input_gets_a_page_never_a_500(editor, fuzz_page, typed, with_content, action):
    page, base = fuzz_page
    data = base.copy()
    latest = fresh(page).get_latest_revision()  # earlier examples saved revisions: this form is up to date
    data["loaded_revision_id"], data["loaded_revision_created_at"] = str(latest.pk), latest.created_at.isoformat()
    add_variant(data, page, NEW_VARIANT, content=SPRING_HERO if with_content else None, **typed)
    response = post(editor, page, data, action)
    event(f"{action}: {response.status_code}")  # --hypothesis-show-statistics: every outcome is reached
    if action == "autosave":  # JSON either way: saved, or "There are validation errors"
        assert response.status_code in (200, 400) and "success" in response.json()
    else:
        assert response.status_code in (200, 302)
    if response.status_code == 200 and action != "autosave":
        html = response.content.decode()
        assert COULD_NOT_SAVE in html
        variants, _ = personalized(html, page)
        assert (variants[-1]["id"], variants[-1]["value"]["label"] or "") == (NEW_VARIANT, typed["label"])
    elif response.status_code in (200, 302):  # saved: the variant once, with the id it was posted with
        saved = fresh(page).get_latest_revision_as_object().body[0].value["variants"]
        assert [(v.id, v.value["label"]) for v in saved.bound_blocks] == [(NEW_VARIANT, typed["label"].strip())]


# Autosave (Wagtail 8's w-autosave): the browser posts the whole form to the edit view asking for
# JSON, every half second of typing; from the second save on it overwrites the revision it made.
def autosave(editor, page, data, revision_id=None) -> int:
    posted = data.copy()
    if revision_id is not None:
        posted["overwrite_revision_id"] = str(revision_id)
    answer = post(editor, page, posted, "autosave").json()
    assert answer["success"], answer
    for name, value in answer["field_updates"].items():  # applied to the open form, as the browser does
        data[name] = value
    return answer["revision_id"]


def variants_of(page) -> list[tuple[str, str]]:
    saved = fresh(page).get_latest_revision_as_object().body.raw_data
    block = next(child for child in saved if child["type"] == "personalized")
    return [(item["id"], item["value"]["label"]) for item in block["value"]["variants"]]


def test_autosaving_a_half_built_variant_keeps_one_copy_with_stable_ids(editor, home):
    data = edit_form_data(editor, home)
    add_variant(data, home, NEW_VARIANT, label=LABEL, devices=["mobile"])  # no content yet: half built
    expected = [*HOME_HERO, (NEW_VARIANT, LABEL)]
    first = autosave(editor, home, data)
    second = autosave(editor, home, data, revision_id=first)
    assert second == first  # the draft was overwritten, not stacked
    assert variants_of(home) == expected
    # The next edit session opens the draft: the same three variants, each once, ids unchanged.
    variants, _ = personalized(editor.get(f"/admin/pages/{home.pk}/edit/").content.decode(), home)
    assert [(v["id"], v["value"]["label"]) for v in variants] == expected
    assert variants[2]["value"]["summary"] == f"{LABEL}: mobile"
    # Saved again from that session (it posts what it loaded), still nothing is duplicated.
    autosave(editor, home, edit_form_data(editor, home))
    assert post(editor, home, edit_form_data(editor, home), "save").status_code == 302
    assert variants_of(home) == expected
