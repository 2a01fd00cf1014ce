"""The segment snippet's admin: the builder in the real edit view, errors at their row, the raw
JSON view, the live count (in the view and from the endpoint the builder posts to), and
"Used by" through Wagtail's reference index."""

from __future__ import annotations

import json
import time

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from wagtail.models import ReferenceIndex

from cms.models import HomePage
from tailored import conf
from tailored.core.types import Event, Snapshot
from tailored.models import Segment
from tests.conftest import DESKTOP_UA
from tests.helpers import make_fan

pytestmark = pytest.mark.django_db

VIEWED_ELECTRONICS = {"type": "count", "event": "page_view", "category": "electronics", "hours": "24", "op": "gte", "value": "3"}
ON_MOBILE = {"type": "field", "field": "context.device", "op": "eq", "choice": "mobile"}
COUNT_RULE = {"count": {"event": "page_view", "category": "electronics", "within_hours": 24}, "op": "gte", "value": 3}
MOBILE_RULE = {"field": "context.device", "op": "eq", "value": "mobile"}
NESTED_RULE = {"all": [COUNT_RULE, {"any": [MOBILE_RULE, {"field": "context.device", "op": "eq", "value": "tablet"}]}]}


def url(name: str, *args) -> str:
    return reverse(Segment.snippet_viewset.get_url_name(name), args=args)


def form_data(rows=(), match="all", mode="builder", json_text="", **fields) -> dict[str, str]:
    data = {
        "name": "Mobile electronics fans",
        "slug": "mobile-electronics-fans",
        "description": "",
        "enabled": "on",
        "priority": "0",
        "rule-mode": mode,
        "rule-match": match,
        "rule-json": json_text,
    }
    for i, row in enumerate(rows):
        data.update({f"rule-{i}-{part}": value for part, value in row.items()})
    data.update(fields)
    return data


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.content, "html.parser")


def record(visitor_id: str, device: str, views: int = 3) -> None:
    """Electronics product views sent from `device` (what live counts see as the context)."""
    now = time.time()
    events = [
        Event(f"{visitor_id[:4]}-{i}", "page_view", ts=now - i, category="electronics", item=str(i + 1), attrs={"page_type": "product"})
        for i in range(views)
    ]
    conf.get_profile_store().record(visitor_id, events, now, Snapshot(device=device))


@pytest.fixture
def editor():
    return get_user_model().objects.get(username="editor")


@pytest.fixture
def admin_client(client, editor):
    client.force_login(editor)
    return client


# The form ------------------------------------------------------------------------------------


def test_an_existing_rule_loads_as_builder_rows(admin_client, memory_store):
    segment = Segment.objects.get(slug="cart-abandoners")
    page = soup(admin_client.get(url("edit", segment.pk)))
    builder = page.select_one("[data-rule-builder]")
    assert builder["data-mode"] == "builder"
    assert page.select_one("[name=rule-match][value=all]").has_attr("checked")
    rows = builder.select("[data-rows] > [data-row]")
    assert [row.select_one("[data-input=type] option[selected]")["value"] for row in rows] == ["cart_abandoned", "count"]
    assert rows[0].select_one("[name=rule-0-idle]")["value"] == "30"
    assert rows[1].select_one("[name=rule-1-event] option[selected]")["value"] == "add_to_cart"
    # Only the inputs a row's type uses are shown.
    assert not rows[0].select_one("[data-part=idle]").has_attr("hidden")
    assert rows[0].select_one("[data-part=op]").has_attr("hidden")
    assert json.loads(builder.select_one("[data-json]").text) == segment.rule
    assert builder["data-preview-url"] == url("rule_preview")


def test_a_field_with_choices_gets_a_select_of_them(admin_client, memory_store):
    segment = Segment.objects.get(slug="mobile-visitors")
    row = soup(admin_client.get(url("edit", segment.pk))).select_one("[data-rows] > [data-row]")
    assert row.select_one("[data-input=field] option[selected]")["value"] == "context.device"
    assert [o["value"] for o in row.select("[data-input=op] option")][:2] == ["eq", "ne"]
    choice = row.select_one("[data-part=choice]")
    assert not choice.has_attr("hidden") and row.select_one("[data-part=value]").has_attr("hidden")
    assert [o["value"] for o in choice.select("option")] == ["mobile", "tablet", "desktop", "bot"]
    assert choice.select_one("option[selected]")["value"] == "mobile"


@pytest.mark.parametrize(("match", "combined"), [("all", "all"), ("any", "any")])
def test_rows_are_saved_as_the_rule_combined_by_the_match(admin_client, memory_store, match, combined):
    response = admin_client.post(url("add"), form_data([VIEWED_ELECTRONICS, ON_MOBILE], match=match))
    assert response.status_code == 302, soup(response).select(".error-message")
    assert Segment.objects.get(slug="mobile-electronics-fans").rule == {combined: [COUNT_RULE, MOBILE_RULE]}


def test_an_invalid_value_is_shown_at_its_row(admin_client, memory_store):
    segment = Segment.objects.get(slug="electronics-fans")
    lots = {**VIEWED_ELECTRONICS, "value": "lots"}
    response = admin_client.post(url("edit", segment.pk), form_data([ON_MOBILE, lots], slug="electronics-fans"))
    assert response.status_code == 200
    page = soup(response)
    first, second = page.select("[data-rows] > [data-row]")
    assert "tl-rule-row--error" in second["class"]
    assert second.select_one("[data-row-error]").text == "Value: must be a number, got 'lots'"
    assert second.select_one("[name=rule-1-value]")["aria-invalid"] == "true"
    assert second.select_one("[name=rule-1-value]")["value"] == "lots"  # what was typed stays
    assert "tl-rule-row--error" not in first["class"] and not first.select_one("[data-row-error]").text
    # The rule field points at the row; no other field has an error.
    errors = [e.get_text(" ", strip=True) for e in page.select(".w-field__errors .error-message")]
    assert errors == ["Condition 2 is not valid: see the message next to it."]
    segment.refresh_from_db()
    assert segment.rule == COUNT_RULE


def test_a_field_level_problem_is_reported_once(admin_client, memory_store):
    for data, message in [
        (form_data([]), "Add at least one condition."),
        (form_data(mode="json", json_text="{nope"), "Not valid JSON"),
    ]:
        response = admin_client.post(url("add"), data)
        errors = [e.get_text(" ", strip=True) for e in soup(response).select(".w-field__errors .error-message")]
        assert len(errors) == 1 and errors[0].startswith(message), errors
    assert not Segment.objects.filter(slug="mobile-electronics-fans").exists()


def test_a_json_error_keeps_its_path(admin_client, memory_store):
    bad = {"all": [COUNT_RULE, {"field": "context.device", "op": "eqq", "value": "mobile"}]}
    response = admin_client.post(url("add"), form_data(mode="json", json_text=json.dumps(bad)))
    page = soup(response)
    errors = [e.get_text(" ", strip=True) for e in page.select(".w-field__errors .error-message")]
    assert errors == ["$.all[1].op: unknown operator 'eqq' for this text condition; use one of eq, ne, in, not_in, contains, matches, present"]
    assert page.select_one("[data-rule-builder]")["data-mode"] == "json"
    assert json.loads(page.select_one("[data-json]").text) == bad


def test_the_raw_json_view_round_trips_a_rule_the_builder_cannot_show(admin_client, memory_store):
    response = admin_client.post(url("add"), form_data(mode="json", json_text=json.dumps(NESTED_RULE)))
    assert response.status_code == 302
    segment = Segment.objects.get(slug="mobile-electronics-fans")
    assert segment.rule == NESTED_RULE

    page = soup(admin_client.get(url("edit", segment.pk)))
    builder = page.select_one("[data-rule-builder]")
    assert builder["data-mode"] == "json"
    assert not builder.select_one("[data-not-representable]").has_attr("hidden")
    assert not builder.select_one("[data-panel=json]").has_attr("hidden")
    assert json.loads(builder.select_one("[data-json]").text) == NESTED_RULE

    # Saved again unchanged from the JSON view, it is the same rule.
    data = form_data(mode="json", json_text=builder.select_one("[data-json]").text)
    assert admin_client.post(url("edit", segment.pk), data).status_code == 302
    segment.refresh_from_db()
    assert segment.rule == NESTED_RULE


def test_a_simple_rule_typed_as_json_opens_in_the_builder(admin_client, memory_store):
    rule = {"any": [COUNT_RULE, MOBILE_RULE]}
    admin_client.post(url("add"), form_data(mode="json", json_text=json.dumps(rule)))
    segment = Segment.objects.get(slug="mobile-electronics-fans")
    builder = soup(admin_client.get(url("edit", segment.pk))).select_one("[data-rule-builder]")
    assert builder["data-mode"] == "builder"
    assert builder.select_one("[name=rule-match][value=any]").has_attr("checked")
    assert len(builder.select("[data-rows] > [data-row]")) == 2


def test_every_demo_segment_opens_and_saves_unchanged_from_the_builder(admin_client, memory_store):
    for segment in Segment.objects.all():
        page = soup(admin_client.get(url("edit", segment.pk)))
        builder = page.select_one("[data-rule-builder]")
        assert builder["data-mode"] == "builder", segment.slug
        data = {field["name"]: field.get("value", "") for field in builder.select("input[name]") if field.get("type") not in ("radio",)}
        data.update({select["name"]: select.select_one("option[selected]")["value"] for select in builder.select("[data-rows] select[name]") if select.select_one("option[selected]")})
        data["rule-match"] = builder.select_one("[name=rule-match][checked]")["value"]
        data.update(name=segment.name, slug=segment.slug, description=segment.description, priority=str(segment.priority), enabled="on")
        response = admin_client.post(url("edit", segment.pk), data)
        assert response.status_code == 302, (segment.slug, soup(response).select(".error-message"))
        before = segment.rule
        segment.refresh_from_db()
        assert segment.rule == before, segment.slug


# Live count and sizes --------------------------------------------------------------------------


def test_the_edit_view_shows_how_many_visitors_match_now(admin_client, memory_store):
    record("a" * 32, "mobile")
    record("b" * 32, "desktop")
    make_fan("c" * 32, views=1)
    segment = Segment.objects.create(name="Mobile electronics fans", slug="mobile-electronics-fans", rule={"all": [COUNT_RULE, MOBILE_RULE]})
    page = soup(admin_client.get(url("edit", segment.pk)))
    assert page.select_one("[data-live-count]").text == "1 visitor matches now"
    assert page.select_one("[data-live-scanned]").text == "of 3 visitors active in the last 24 hours"
    chart = page.select_one("[data-size-chart]")
    assert "Visitors in the segment per day" in chart.select_one("figcaption").text
    assert len(chart.select(".tl-chart__bars rect")) == 30


def test_the_preview_endpoint_counts_the_posted_rule(admin_client, memory_store):
    record("a" * 32, "mobile")
    record("b" * 32, "desktop")
    reply = admin_client.post(url("rule_preview"), form_data([VIEWED_ELECTRONICS, ON_MOBILE]))
    assert reply.status_code == 200
    body = reply.json()
    assert body["rule"] == {"all": [COUNT_RULE, MOBILE_RULE]}
    assert json.loads(body["json"]) == body["rule"]
    assert (body["count"], body["scanned"], body["error"]) == (1, 2, None)
    assert admin_client.post(url("rule_preview"), form_data([VIEWED_ELECTRONICS], match="any")).json()["count"] == 2


def test_the_preview_endpoint_places_errors_on_rows(admin_client, memory_store):
    reply = admin_client.post(url("rule_preview"), form_data([ON_MOBILE, {**VIEWED_ELECTRONICS, "hours": "0"}]))
    error = reply.json()["error"]
    assert error["path"] == "$.all[1].count.within_hours"
    assert (error["row"], error["part"]) == (1, "hours")
    assert error["row_message"].startswith("Within hours: must be a whole number of hours")
    assert reply.json()["count"] is None


def test_the_preview_endpoint_renders_rows_for_the_switch_back_from_json(admin_client, memory_store):
    simple = admin_client.post(url("rule_preview"), form_data(mode="json", json_text=json.dumps({"any": [COUNT_RULE, MOBILE_RULE]}), widget_id="id_rule")).json()
    assert simple["representable"] is True and simple["match"] == "any"
    rows = BeautifulSoup(simple["rows_html"], "html.parser").select("[data-row]")
    assert [row.select_one("[data-input=type] option[selected]")["value"] for row in rows] == ["count", "field"]
    assert rows[1].select_one("select[name=rule-1-choice]")["id"] == "id_rule-1-choice"
    nested = admin_client.post(url("rule_preview"), form_data(mode="json", json_text=json.dumps(NESTED_RULE))).json()
    assert nested["representable"] is False and "rows_html" not in nested
    assert nested["count"] == 0


def test_the_preview_endpoint_requires_an_admin_login(client, memory_store):
    response = client.post(url("rule_preview"), form_data([VIEWED_ELECTRONICS]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_preview_endpoint_requires_a_segment_permission(client, memory_store):
    user = get_user_model().objects.create_user("reader", password="x")
    user.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(user)
    assert client.post(url("rule_preview"), form_data([VIEWED_ELECTRONICS])).status_code == 403


def test_the_preview_endpoint_requires_the_csrf_token(editor, memory_store):
    strict = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=DESKTOP_UA)
    strict.force_login(editor)
    assert strict.post(url("rule_preview"), form_data([VIEWED_ELECTRONICS])).status_code == 403
    strict.get(url("add"))  # sets the CSRF cookie, as the edit view does for the builder
    token = strict.cookies["csrftoken"].value
    reply = strict.post(url("rule_preview"), form_data([VIEWED_ELECTRONICS]), HTTP_X_CSRFTOKEN=token)
    assert reply.status_code == 200 and reply.json()["count"] == 0


def test_the_preview_endpoint_only_takes_posts(admin_client, memory_store):
    assert admin_client.get(url("rule_preview")).status_code == 405


# Where used ------------------------------------------------------------------------------------


def test_the_personalized_block_references_the_segments_its_variants_target(django_assert_num_queries):
    home = HomePage.objects.get()
    block = home.body[0]
    with django_assert_num_queries(1):  # one lookup for every variant's segments of a block
        references = list(block.block.extract_references(block.value))
    segments = {ref[1]: ref for ref in references if ref[0] is Segment}
    fans = Segment.objects.get(slug="electronics-fans")
    variant = block.value["variants"].bound_blocks[0]
    assert segments[str(fans.pk)] == (Segment, str(fans.pk), "variants.item.segments", f"variants.{variant.id}.segments")
    assert str(Segment.objects.get(slug="outdoors-fans").pk) in segments
    # The whole page's body names the segment too (the index stores it once per place).
    body = HomePage._meta.get_field("body")
    assert str(fans.pk) in {ref[1] for ref in body.extract_references(home.body) if ref[0] is Segment}


def test_a_segments_usage_view_lists_the_homepage(admin_client):
    home = HomePage.objects.get()
    fans = Segment.objects.get(slug="electronics-fans")
    # load_demo creates the segments before the pages, whose saves index their references.
    assert str(home.pk) in {ref.object_id for ref in ReferenceIndex.get_references_to(fans)}
    home.save_revision().publish()  # and saving the page again keeps them
    assert str(home.pk) in {ref.object_id for ref in ReferenceIndex.get_references_to(fans)}
    page = soup(admin_client.get(url("usage", fans.pk)))
    links = [a["href"] for a in page.select("main a[href]")]
    assert reverse("wagtailadmin_pages:edit", args=[home.pk]) in links
    assert home.title in page.text
    assert "Body → Personalized" in page.text


def test_the_field_picker_reads_as_words(admin_client, memory_store):
    segment = Segment.objects.get(slug="mobile-visitors")
    row = soup(admin_client.get(url("edit", segment.pk))).select_one("[data-rows] > [data-row]")
    labels = {o["value"]: o.get_text() for o in row.select("[data-input=field] option")}
    assert labels["context.os"] == "Operating system"
    assert labels["context.utm_source"] == "UTM source"
    assert labels["context.temperature_c"] == "Temperature (°C)"
    assert labels["profile.sessions_7d"] == "Sessions in the last 7 days"
    assert labels["profile.page_views"] == "Page views"


def test_a_segment_saved_without_a_slug_gets_one_from_its_name(admin_client, memory_store):
    for _ in range(2):
        response = admin_client.post(url("add"), form_data([ON_MOBILE], name="Phone shoppers", slug=""))
        assert response.status_code == 302, soup(response).select(".error-message")
    slugs = sorted(Segment.objects.filter(name="Phone shoppers").values_list("slug", flat=True))
    assert slugs == ["phone-shoppers", "phone-shoppers-2"]
