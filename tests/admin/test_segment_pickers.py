"""The rule builder's pickers and warnings (issue 16 item 3): datalists of known categories,
items, countries, regions, personas and score names; a warning, never an error, for a value no
visitor has ever had: inline on the row (in the edit view and from the builder's endpoint) and as
a message after saving, which goes through."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.urls import reverse

from cms.models import CategoryPage, ProductPage
from tailored.ml import registry
from tailored.ml.scoring import PROPENSITY
from tailored.models import Event as StoredEvent
from tailored.models import PersonaLabel, Segment
from tailored.rule_values import rule_values, score_names, value_warnings

pytestmark = pytest.mark.django_db

IN_COUNTRY = {"type": "field", "field": "context.country", "op": "eq", "value": "GB"}


def url(name: str, *args) -> str:
    return reverse(Segment.snippet_viewset.get_url_name(name), args=args)


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.content, "html.parser")


def form_data(rows=(), match="all", mode="builder", json_text="", **fields) -> dict[str, str]:
    data = {
        "name": "Picked", "slug": "picked", "description": "", "enabled": "on", "priority": "0",
        "rule-mode": mode, "rule-match": match, "rule-json": json_text,
    }
    for i, row in enumerate(rows):
        data.update({f"rule-{i}-{part}": value for part, value in row.items()})
    data.update(fields)
    return data


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.get(username="editor"))
    return client


@pytest.fixture
def models_dir(memory_store, personalization, tmp_path):
    """An empty model registry of this test's own."""
    personalization(MODEL_DIR=str(tmp_path / "models"))
    return tmp_path / "models"


def publish_scores(*names: str) -> None:
    """A propensity model as training publishes it: the metadata names the scores it writes."""
    registry.publish(PROPENSITY, {}, {"metrics": {name: {"roc_auc": 0.8} for name in names}})


def store_event(category: str = "", item: str = "") -> None:
    StoredEvent.objects.create(visitor_id="a" * 32, event_id=f"e-{category}-{item}", type="page_view", ts=datetime.now(UTC), category=category, item=item)


def messages_of(warnings) -> dict[str, str]:
    return {w.value: w.message for w in warnings}


# Pickers ---------------------------------------------------------------------------------------


def test_the_builder_offers_every_kind_of_known_value(admin_client, models_dir):
    publish_scores("churn_risk", "purchase_intent")
    PersonaLabel.objects.create(slug="researcher", name="Researcher")
    page = soup(admin_client.get(url("add")))
    lists = {datalist["data-picker"]: {o["value"]: o.get_text() for o in datalist.select("option")} for datalist in page.select("[data-rule-builder] datalist")}
    assert set(lists) == {"category", "item", "country", "region", "persona", "score"}
    assert lists["category"] == dict(CategoryPage.objects.live().values_list("slug", "title"))
    product = ProductPage.objects.live().first()
    assert lists["item"][str(product.pk)] == product.title
    assert lists["country"]["GB"] == "United Kingdom" and len(lists["country"]) == 250
    regions = dict(admin_client.get(url("rule_values"), {"kind": "region"}).json()["options"])  # fetched when needed
    assert regions["GB-ENG"] == "England (United Kingdom)" and regions["US-CA"] == "California (United States)"
    assert lists["persona"] == {"researcher": "Researcher"}
    assert set(lists["score"]) == {"churn_risk", "purchase_intent"}


def test_row_inputs_name_their_picker(admin_client, models_dir):
    segment = Segment.objects.create(name="In GB", slug="in-gb", rule={"all": [
        {"field": "context.country", "op": "eq", "value": "GB"},
        {"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 1},
        {"field": "score.churn_risk", "op": "gte", "value": 0.5},
        {"field": "profile.page_views", "op": "gte", "value": 2},
    ]})
    builder = soup(admin_client.get(url("edit", segment.pk))).select_one("[data-rule-builder]")
    rows = builder.select("[data-rows] > [data-row]")
    widget = builder["id"]
    assert rows[0].select_one("[name=rule-0-value]")["list"] == f"{widget}-list-country"
    assert rows[1].select_one("[name=rule-1-category]")["list"] == f"{widget}-list-category"
    assert rows[1].select_one("[name=rule-1-item]")["list"] == f"{widget}-list-item"
    assert rows[2].select_one("[name=rule-2-score]")["list"] == f"{widget}-list-score"
    assert not rows[3].select_one("[name=rule-3-value]").has_attr("list")  # a number: nothing to pick
    for row in rows:  # every list a row names is on the page
        for named in row.select("[list]"):
            assert builder.select_one(f"datalist#{named['list']}") is not None
    # The script switches a value's picker with its field: the catalog says which fields have one.
    catalog = json.loads(builder.select_one("script[type='application/json']").text)
    assert catalog["fields"]["context.region"]["picker"] == "region"
    assert catalog["fields"]["profile.preferences"]["picker"] == "category"
    assert catalog["fields"]["context.browser"]["picker"] is None


# Which values are looked up -----------------------------------------------------------------


def test_the_values_of_a_rule_are_found_wherever_they_are():
    rule = {"all": [
        {"count": {"event": "page_view", "category": "books", "within_hours": 24}, "op": "gte", "value": 1},
        {"not": {"count": {"event": "add_to_cart", "item": 17, "within_hours": 24}, "op": "gte", "value": 1}},
        {"any": [
            {"field": "context.country", "op": "in", "value": ["GB", "IE"]},
            {"field": "context.region", "op": "matches", "value": "^US-"},  # a pattern: not looked up
            {"avg_dwell": {"category": "garden"}, "op": "gte", "value": 30},
            {"field": "profile.preferences", "op": "contains", "value": "books"},
            {"field": "profile.persona", "op": "ne", "value": "researcher"},
            {"field": "score.churn_risk", "op": "gte", "value": 0.7},
        ]},
    ]}
    assert [(v.path, v.kind, v.value) for v in rule_values(rule)] == [
        ("$.all[0].count.category", "category", "books"),
        ("$.all[1].not.count.item", "item", "17"),
        ("$.all[2].any[0].value", "country", "GB"),
        ("$.all[2].any[0].value", "country", "IE"),
        ("$.all[2].any[2].avg_dwell.category", "category", "garden"),
        ("$.all[2].any[3].value", "category", "books"),
        ("$.all[2].any[4].value", "persona", "researcher"),
        ("$.all[2].any[5].field", "score", "churn_risk"),
    ]


# Warnings ----------------------------------------------------------------------------------------


def test_a_category_no_stored_event_has_is_a_warning(models_dir):
    store_event(category="electronics")
    rule = {"any": [
        {"count": {"event": "page_view", "category": category, "within_hours": 24}, "op": "gte", "value": 1}
        for category in ("electronics", "books", "garden")
    ]}
    found = messages_of(value_warnings(rule))
    assert set(found) == {"books", "garden"}
    assert found["books"] == "No visitor has had category “books” yet: no stored event is in it."  # a category page
    assert found["garden"] == "No visitor has had category “garden”: no stored event is in it, and no category page has that slug."


def test_before_any_event_is_stored_a_category_page_is_no_warning(models_dir):
    # Without the worker (the memory store) no visit is stored: only values the site has no page
    # for are known to match nobody.
    assert not StoredEvent.objects.exists()
    rule = {"any": [{"avg_dwell": {"category": category}, "op": "gte", "value": 5} for category in ("books", "garden")]}
    assert set(messages_of(value_warnings(rule))) == {"garden"}


def test_an_item_no_stored_event_names_is_a_warning(models_dir):
    viewed, unseen = ProductPage.objects.live().order_by("pk")[:2]
    store_event(item=str(viewed.pk))
    rule = {"any": [{"field": "profile.viewed_items", "op": "contains", "value": value} for value in (str(viewed.pk), str(unseen.pk), "999999")]}
    found = messages_of(value_warnings(rule))
    assert found == {
        str(unseen.pk): f"No visitor has had item “{unseen.pk}” yet: no stored event names it.",
        "999999": "No visitor has had item “999999”: no stored event names it, and no product has that id.",
    }


def test_countries_and_regions_must_be_iso_codes(models_dir):
    rule = {"all": [
        {"field": "context.country", "op": "in", "value": ["GB", "gb", "XX", "UK"]},
        {"field": "context.region", "op": "ne", "value": "GB-ENG"},
        {"field": "context.region", "op": "eq", "value": "US-ZZ"},
        {"field": "context.region", "op": "eq", "value": "us-ca"},
    ]}
    found = messages_of(value_warnings(rule))
    assert set(found) == {"gb", "XX", "UK", "US-ZZ", "us-ca"}
    assert found["gb"] == "No visitor has “gb”: codes are upper case, “GB”."
    assert found["XX"] == "No visitor has “XX”: it is not an ISO 3166-1 country code, such as GB or US."
    assert found["US-ZZ"] == "No visitor has “US-ZZ”: it is not an ISO 3166-2 region code, such as GB-ENG or US-CA."
    assert found["us-ca"] == "No visitor has “us-ca”: codes are upper case, “US-CA”."


def test_personas_must_be_ones_training_found(models_dir):
    rule = {"field": "profile.persona", "op": "in", "value": ["researcher", "old", "nobody"]}
    assert messages_of(value_warnings(rule))["researcher"].endswith("no persona exists yet (run manage.py tailored_train).")
    PersonaLabel.objects.create(slug="researcher", name="Researcher")
    PersonaLabel.objects.create(slug="old", name="Old", active=False)
    found = messages_of(value_warnings(rule))
    assert set(found) == {"old", "nobody"}
    assert found["old"] == "No visitor has persona “old”: the current persona model does not find it (it finds researcher)."
    assert found["nobody"] == "No visitor has persona “nobody”: no persona has that slug (training found researcher)."


def test_score_names_must_be_ones_a_model_produces(models_dir):
    rule = {"any": [{"field": f"score.{name}", "op": "gte", "value": 0.5} for name in ("churn_risk", "churn")]}
    assert score_names() == ()
    assert messages_of(value_warnings(rule))["churn_risk"].endswith("no model produces scores yet (run manage.py tailored_train).")
    publish_scores("churn_risk", "purchase_intent")
    assert score_names() == ("churn_risk", "purchase_intent")
    assert messages_of(value_warnings(rule)) == {
        "churn": "No visitor has a “churn” score: no model produces it (the models produce churn_risk, purchase_intent)."
    }


def test_values_visitors_have_had_give_no_warning(models_dir):
    store_event(category="electronics", item="5")
    publish_scores("churn_risk")
    PersonaLabel.objects.create(slug="researcher", name="Researcher")
    rule = {"all": [
        {"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 1},
        {"count": {"event": "page_view", "item": "5", "within_hours": 24}, "op": "gte", "value": 1},
        {"field": "context.country", "op": "eq", "value": "GB"},
        {"field": "context.region", "op": "eq", "value": "GB-SCT"},
        {"field": "profile.persona", "op": "eq", "value": "researcher"},
        {"field": "score.churn_risk", "op": "gte", "value": 0.5},
    ]}
    assert value_warnings(rule) == []


# Where editors see them -----------------------------------------------------------------------------


def test_the_edit_view_shows_a_warning_on_the_row_it_concerns(admin_client, models_dir):
    segment = Segment.objects.create(name="Garden fans", slug="garden-fans", rule={"all": [
        {"field": "context.country", "op": "eq", "value": "GB"},
        {"count": {"event": "page_view", "category": "garden", "within_hours": 24}, "op": "gte", "value": 3},
    ]})
    page = soup(admin_client.get(url("edit", segment.pk)))
    first, second = page.select("[data-rows] > [data-row]")
    assert first.select_one("[data-row-warning]").has_attr("hidden")
    warning = second.select_one("[data-row-warning]")
    assert not warning.has_attr("hidden")
    assert warning.get_text(strip=True).startswith("No visitor has had category “garden”")
    assert not second.select_one("[data-row-error]").text  # a warning, not an error
    assert page.select_one("[data-rule-warnings]").has_attr("hidden")


def test_a_rule_shown_as_json_lists_its_warnings_with_their_paths(admin_client, models_dir):
    nested = {"all": [{"not": {"field": "context.country", "op": "eq", "value": "gb"}}, {"field": "profile.page_views", "op": "gte", "value": 1}]}
    segment = Segment.objects.create(name="Nested", slug="nested", rule=nested)
    box = soup(admin_client.get(url("edit", segment.pk))).select_one("[data-rule-warnings]")
    assert not box.has_attr("hidden")
    assert [li.get_text() for li in box.select("li")] == ["$.all[0].not.value: No visitor has “gb”: codes are upper case, “GB”."]


def test_the_builders_endpoint_warns_as_the_editor_types(admin_client, models_dir):
    rows = [IN_COUNTRY, {**IN_COUNTRY, "value": "GBR"}]
    body = admin_client.post(url("rule_preview"), form_data(rows)).json()
    assert body["error"] is None and body["count"] == 0
    assert body["warnings"] == [{"row": 1, "message": "No visitor has “GBR”: it is not an ISO 3166-1 country code, such as GB or US."}]
    as_json = json.dumps({"field": "score.nope", "op": "gte", "value": 0.5})
    body = admin_client.post(url("rule_preview"), form_data(mode="json", json_text=as_json)).json()
    assert [w["row"] for w in body["warnings"]] == [None]
    assert body["warnings"][0]["message"].startswith("$.field: No visitor has a “nope” score")


def test_saving_values_nobody_has_goes_through_with_a_warning(admin_client, models_dir):
    rows = [{"type": "count", "event": "page_view", "category": "garden", "hours": "24", "op": "gte", "value": "3"}]
    response = admin_client.post(url("add"), form_data(rows), follow=True)
    assert response.redirect_chain and response.status_code == 200
    segment = Segment.objects.get(slug="picked")
    assert segment.rule["count"]["category"] == "garden"
    shown = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert ("warning", "Picked: No visitor has had category “garden”: no stored event is in it, and no category page has that slug.") in shown
    assert any(level == "success" for level, _ in shown)
    # Values visitors have had: saved without a warning.
    store_event(category="garden")
    response = admin_client.post(url("edit", segment.pk), form_data(rows), follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["success"]


# The long pickers' endpoint ----------------------------------------------------------------------


def test_the_region_list_comes_with_the_page_only_when_the_rule_uses_it(admin_client, models_dir):
    page = soup(admin_client.get(url("add")))
    regions = page.select_one("datalist[data-picker=region]")
    assert not regions.select("option") and regions["data-src"] == url("rule_values") + "?kind=region"
    assert page.select_one("datalist[data-picker=country]").select("option")  # short lists come along
    segment = Segment.objects.create(name="England", slug="england", rule={"field": "context.region", "op": "eq", "value": "GB-ENG"})
    regions = soup(admin_client.get(url("edit", segment.pk))).select_one("datalist[data-picker=region]")
    assert len(regions.select("option")) > 5000 and not regions.has_attr("data-src")


def test_the_builder_fetches_a_picker_it_was_not_sent(admin_client, models_dir):
    options = admin_client.get(url("rule_values"), {"kind": "region"}).json()["options"]
    assert ["US-CA", "California (United States)"] in options
    assert admin_client.get(url("rule_values"), {"kind": "planets"}).status_code == 404
    assert admin_client.post(url("rule_values"), {"kind": "region"}).status_code == 405


def test_an_editor_with_the_segment_permission_may_use_the_builders_endpoints(client, models_dir):
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("segments-only", password="x")
    user.user_permissions.add(Permission.objects.get(codename="access_admin"), Permission.objects.get(codename="change_segment"))
    client.force_login(user)
    assert client.get(url("rule_values"), {"kind": "country"}).status_code == 200
    assert client.post(url("rule_preview"), form_data([IN_COUNTRY])).status_code == 200
    user.user_permissions.remove(Permission.objects.get(codename="change_segment"))
    client.force_login(get_user_model().objects.get(pk=user.pk))
    assert client.get(url("rule_values"), {"kind": "country"}).status_code == 403
