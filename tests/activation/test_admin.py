"""Activation in the Wagtail admin (issue 20): triggers with per-kind fields, destinations with
"send test" against a real local HTTP server, and the activation log with its dead letters."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone
from wagtail import hooks

from tailored import webhooks
from tailored.activation.destinations import DestinationKind
from tailored.activation.models import ActivationSend, Destination, Trigger
from tailored.models import Segment
from tests.activation.conftest import SECRET, make_trigger, webhook

pytestmark = pytest.mark.django_db


def errors(response) -> list[str]:
    page = BeautifulSoup(response.content, "html.parser")
    return [e.get_text(" ", strip=True) for e in page.select(".error-message, .help-critical")]


def page_text(response) -> str:
    return BeautifulSoup(response.content, "html.parser").get_text(" ", strip=True)


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def trigger_form(destination: Destination, **values) -> dict[str, str]:
    return {"name": "Churn risk above 0.7", "enabled": "on", "kind": "score_above", "cooldown_hours": "24",
            "destination": str(destination.pk), **values}


def email_form(**values) -> dict[str, str]:
    return {"name": "Shop email", "kind": "email", "email_subject": "Still thinking, {{ trigger }}?",
            "email_body": "{% for p in cart %}{{ p.title }}\n{% endfor %}", "enabled": "on", **values}


def dead_letter(destination: Destination, trigger: Trigger | None = None, key: str = "k1") -> ActivationSend:
    return ActivationSend.objects.create(
        trigger=trigger, destination=destination, visitor_id="f" * 32, idempotency_key=key, payload={},
        status=ActivationSend.Status.FAILED, attempts=3, next_attempt_at=timezone.now(), last_error="HTTP 500: receiver is down",
    )


# Triggers ---------------------------------------------------------------------------------------


def test_a_trigger_made_with_the_form_stores_only_its_kind_s_params(editor):
    destination = webhook("http://127.0.0.1:9/hook")
    segment = Segment.objects.get(slug="electronics-fans")
    # Fields of other kinds (minutes, purchases) and a segment left over from switching kinds are dropped.
    response = editor.post(reverse("tailored_triggers:add"), trigger_form(
        destination, score="churn_risk", threshold="0.7", minutes="30", purchases="4", segment=str(segment.pk),
        condition='{"field": "context.device", "op": "eq", "value": "mobile"}', quiet_start="22:00", quiet_end="07:00",
    ))
    assert response.status_code == 302, errors(response)
    trigger = Trigger.objects.get(name="Churn risk above 0.7")
    assert (trigger.kind, trigger.params, trigger.segment) == ("score_above", {"score": "churn_risk", "threshold": 0.7}, None)
    assert trigger.condition == {"field": "context.device", "op": "eq", "value": "mobile"}
    assert (str(trigger.quiet_start), str(trigger.quiet_end)) == ("22:00:00", "07:00:00")

    edit = editor.get(reverse("tailored_triggers:edit", args=[trigger.pk]))
    form = edit.context["form"]
    assert (form["score"].value(), form["threshold"].value()) == ("churn_risk", 0.7)  # params shown in their fields
    response = editor.post(reverse("tailored_triggers:edit", args=[trigger.pk]), trigger_form(
        destination, kind="browse_abandoned", views="3", minutes="45", score="churn_risk", threshold="0.7",
    ))
    assert response.status_code == 302, errors(response)
    trigger.refresh_from_db()
    assert (trigger.params, trigger.condition) == ({"views": 3, "minutes": 45}, None)


def test_the_trigger_list_shows_sends_delivered_in_the_last_seven_days(editor):
    trigger = make_trigger(webhook("http://127.0.0.1:9/hook"), "cart_abandoned", name="Cart reminder", params={"minutes": 30})
    now = timezone.now()
    for n, (status, days_ago) in enumerate([("delivered", 1), ("delivered", 2), ("delivered", 9), ("failed", 1)]):
        ActivationSend.objects.create(
            trigger=trigger, destination=trigger.destination, visitor_id="a" * 32, idempotency_key=f"k{n}", payload={},
            status=status, next_attempt_at=now, delivered_at=now - timezone.timedelta(days=days_ago),
        )
    page = BeautifulSoup(editor.get(reverse("tailored_triggers:index")).content, "html.parser")
    [row] = [tr for tr in page.select("tbody tr") if "Cart reminder" in tr.get_text()]
    cells = [td.get_text(" ", strip=True) for td in row.select("td")]
    assert "Abandoned a cart" in cells and "CRM hook" in cells
    assert cells[-1] == "2"


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"score": "churn_risk"}, "threshold", "Score above needs threshold."),
    ({"score": "churn_risk", "threshold": "-1"}, "threshold", "Threshold must be a positive number, not -1.0."),
    ({"kind": "browse_abandoned", "views": "3"}, "minutes", "Browse abandoned needs minutes."),
    ({"kind": "segment_entered"}, "segment", "Choose the segment to watch."),
    ({"kind": "loyalty_milestone"}, "__all__", "A loyalty milestone needs a number of purchases or a lifetime value."),
    ({"score": "churn_risk", "threshold": "0.7", "quiet_start": "22:00"}, "quiet_end",
     "Set both the start and the end of the quiet hours, or neither."),
    ({"score": "churn_risk", "threshold": "0.7", "condition": '{"field": "context.device",'}, "condition",
     "Not valid JSON: Expecting property name enclosed in double quotes: line 1 column 28 (char 27)"),
    ({"score": "churn_risk", "threshold": "0.7", "condition": '{"count": {"event": "teleport"}, "op": "gte", "value": 1}'},
     "condition", "The condition does not compile: $.count.event: unknown event type 'teleport'; known: add_to_cart, "
     "click, dwell, filter_change, form_submit, impression, page_view, purchase, recommendation_feedback, "
     "remove_from_cart, scroll_depth, search, video_pause, video_play"),
])
def test_a_bad_trigger_is_refused_with_the_precise_error_and_nothing_stored(editor, values, field, message):
    response = editor.post(reverse("tailored_triggers:add"), trigger_form(webhook("http://127.0.0.1:9/hook"), **values))
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert message in page_text(response)  # beside its field, or in the message above the form
    assert not Trigger.objects.exists()


# Destinations -----------------------------------------------------------------------------------


def test_a_destination_keeps_its_extra_payload_fields_and_other_options(editor):
    response = editor.post(reverse("tailored_destinations:add"), {
        "name": "CRM hook", "kind": "webhook", "url": "https://crm.example.com/hook", "secret": SECRET,
        "payload_fields": ["traits", "last_viewed"], "enabled": "on",
    })
    assert response.status_code == 302, errors(response)
    destination = Destination.objects.get(name="CRM hook")
    assert destination.options == {"fields": ["traits", "last_viewed"]}
    destination.options["region"] = "eu"  # a registered kind's own setting, not on the form
    destination.save()
    response = editor.post(reverse("tailored_destinations:edit", args=[destination.pk]), {
        "name": "CRM hook", "kind": "webhook", "url": "https://crm.example.com/hook", "payload_fields": ["traits"],
    })
    assert response.status_code == 302, errors(response)
    destination.refresh_from_db()
    assert (destination.options, destination.enabled) == ({"fields": ["traits"], "region": "eu"}, False)


def test_registered_kinds_are_offered_and_an_unregistered_stored_kind_is_shown_but_not_saved(editor):
    braze = DestinationKind("braze", "Braze", lambda destination, payload, http: None, needs=frozenset({"user_id"}))
    with hooks.register_temporarily("register_tailored_destination", lambda: braze):
        response = editor.post(reverse("tailored_destinations:add"), {"name": "Braze", "kind": "braze", "enabled": "on"})
        assert response.status_code == 302, errors(response)
    destination = Destination.objects.get(name="Braze")  # the plugin is gone now
    edit = reverse("tailored_destinations:edit", args=[destination.pk])
    assert ("braze", "braze (not registered)") in editor.get(edit).context["form"].fields["kind"].choices
    response = editor.post(edit, {"name": "Braze EU", "kind": "braze"})
    assert response.context["form"].errors["kind"] == ["No destination kind 'braze' is registered on this site."]
    assert Destination.objects.get(pk=destination.pk).name == "Braze"


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"email_body": "{% for p in cart %}{{ p.title }}"}, "email_body",
     "The body is not a valid Django template: Unclosed tag on line 1: 'for'. Looking for one of: empty, endfor."),
    ({"email_subject": "{{ trigger|nosuchfilter }}"}, "email_subject",
     "The subject is not a valid Django template: Invalid filter: 'nosuchfilter'"),
    ({"email_subject": ""}, "email_subject", "An email destination needs its subject."),
    ({"kind": "webhook", "url": ""}, "url", "A signed webhook destination needs the URL it sends to."),
    ({"kind": "sms"}, "kind", "Select a valid choice. sms is not one of the available choices."),
])
def test_a_bad_destination_is_refused_with_the_precise_error_and_nothing_stored(editor, values, field, message):
    response = editor.post(reverse("tailored_destinations:add"), email_form(**values))
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert not Destination.objects.exists()


def test_send_test_delivers_a_signed_post_and_says_where(editor, receiver):
    server = receiver(200)
    destination = webhook(server.url + "/hook")
    edit_page = editor.get(reverse("tailored_destinations:edit", args=[destination.pk])).content.decode()
    send_test = reverse("tailored_destinations:send_test", args=[destination.pk])
    assert f'action="{send_test}"' in edit_page

    response = editor.post(send_test, follow=True)
    assert shown_messages(response) == [f"Delivered to {server.url}/hook."]
    [(method, path, headers, body)] = server.requests
    assert (method, path) == ("POST", "/hook")
    assert webhooks.verify_signature(SECRET, body, headers["X-Tailored-Signature"])
    [send] = ActivationSend.objects.all()
    assert (send.test, send.status) == (True, "delivered")


def test_send_test_to_a_failing_server_shows_its_error(editor, receiver):
    server = receiver(500)
    destination = webhook(server.url + "/hook")
    response = editor.post(reverse("tailored_destinations:send_test", args=[destination.pk]), follow=True)
    assert shown_messages(response) == ["The test send to CRM hook failed: HTTP 500: receiver is down"]
    assert len(server.requests) == 1  # a test send is never retried
    assert ActivationSend.objects.get().status == "failed"


def test_send_test_needs_a_post_with_a_csrf_token(client, django_user_model, receiver):
    server = receiver(200)
    destination = webhook(server.url)
    checked = type(client)(enforce_csrf_checks=True)
    checked.force_login(django_user_model.objects.get(username="editor"))
    url = reverse("tailored_destinations:send_test", args=[destination.pk])
    assert checked.get(url).status_code == 405
    assert checked.post(url).status_code == 403
    assert not server.requests


def test_a_destination_that_triggers_use_is_not_deleted(editor):
    destination = webhook("http://127.0.0.1:9/hook")
    make_trigger(destination, "cart_abandoned", name="Cart reminder", params={"minutes": 30})
    delete = reverse("tailored_destinations:delete", args=[destination.pk])
    assert "Triggers send to CRM hook: Cart reminder." in page_text(editor.get(delete))
    response = editor.post(delete, follow=True)
    assert shown_messages(response) == ["Triggers send to CRM hook: Cart reminder. Point them elsewhere first."]
    assert Destination.objects.filter(pk=destination.pk).exists()
    Trigger.objects.all().delete()
    editor.post(delete)
    assert not Destination.objects.filter(pk=destination.pk).exists()


# Activation log ---------------------------------------------------------------------------------


def test_the_log_lists_a_dead_letter_and_send_again_makes_it_pending(editor):
    destination = webhook("http://127.0.0.1:9/hook")
    trigger = make_trigger(destination, "cart_abandoned", name="Cart reminder", params={"minutes": 30})
    send = dead_letter(destination, trigger)
    page = BeautifulSoup(editor.get(reverse("tailored_activation_log:index")).content, "html.parser")
    [row] = page.select("tbody tr")
    text = row.get_text(" ", strip=True)
    for shown in ("Cart reminder", "CRM hook", "ffffffff…", "Failed (dead letter)", "HTTP 500: receiver is down"):
        assert shown in text
    assert "f" * 9 not in text  # the visitor id is shortened
    [button] = row.select("form[data-tl-send-again]")
    assert button["action"] == reverse("tailored_activation_log:send_again", args=[send.pk])

    response = editor.post(button["action"], {"next": reverse("tailored_activation_log:index") + "?status=failed"})
    assert response["Location"] == reverse("tailored_activation_log:index") + "?status=failed"
    send.refresh_from_db()
    assert (send.status, send.attempts) == ("pending", 0)
    assert shown_messages(editor.get(response["Location"])) == [
        "The send to CRM hook is pending again: the workers deliver it on their next turn."
    ]
    page = BeautifulSoup(editor.get(reverse("tailored_activation_log:index")).content, "html.parser")
    assert not page.select("form[data-tl-send-again]")  # pending: nothing to send again


def test_the_log_filters_by_status_and_trigger(editor):
    destination = webhook("http://127.0.0.1:9/hook")
    cart = make_trigger(destination, "cart_abandoned", name="Cart reminder", params={"minutes": 30})
    churn = make_trigger(destination, "score_above", name="Churn risk", params={"score": "churn_risk", "threshold": 0.7})
    dead_letter(destination, cart, key="k1")
    dead_letter(destination, churn, key="k2")
    ActivationSend.objects.filter(idempotency_key="k2").update(status="delivered")

    def rows(**query) -> list[str]:
        page = BeautifulSoup(editor.get(reverse("tailored_activation_log:index"), query).content, "html.parser")
        return [tr.select("td")[1].get_text(strip=True) for tr in page.select("tbody tr")]

    assert rows() == ["Churn risk", "Cart reminder"]
    assert rows(status="failed") == ["Cart reminder"]
    assert rows(trigger=str(churn.pk)) == ["Churn risk"]
    assert "No sends match these filters." in editor.get(reverse("tailored_activation_log:index"), {"status": "skipped"}).content.decode()


def test_an_empty_log_says_what_will_appear(editor):
    page = editor.get(reverse("tailored_activation_log:index")).content.decode()
    assert "No sends yet. Each time a trigger fires for a known visitor who granted marketing" in page


# Permissions ------------------------------------------------------------------------------------


def admin_user(client, django_user_model, *codenames: str):
    user = django_user_model.objects.create_user("plain", "plain@example.com", "pw")
    user.groups.add(Group.objects.get(name="Editors"))  # Wagtail's: admin access, nothing of ours
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tailored", codename__in=codenames))
    client.force_login(user)
    return client


def test_without_permissions_every_screen_and_action_is_refused(client, django_user_model, receiver):
    server = receiver(200)
    plain = admin_user(client, django_user_model)
    destination = webhook(server.url)
    send = dead_letter(destination)
    refused = [
        plain.get(reverse("tailored_triggers:index")),
        plain.get(reverse("tailored_triggers:add")),
        plain.get(reverse("tailored_destinations:edit", args=[destination.pk])),
        plain.post(reverse("tailored_destinations:send_test", args=[destination.pk])),
        plain.get(reverse("tailored_activation_log:index")),
        plain.post(reverse("tailored_activation_log:send_again", args=[send.pk])),
    ]
    assert [(r.status_code, r["Location"]) for r in refused] == [(302, reverse("wagtailadmin_home"))] * len(refused)
    assert not server.requests
    assert ActivationSend.objects.get().status == "failed"
    assert "Activation" not in editor_menu(plain)


def test_the_view_permission_shows_the_log_but_not_send_again(client, django_user_model):
    viewer = admin_user(client, django_user_model, "view_activationsend")
    send = dead_letter(webhook("http://127.0.0.1:9/hook"))
    page = BeautifulSoup(viewer.get(reverse("tailored_activation_log:index")).content, "html.parser")
    assert len(page.select("tbody tr")) == 1 and not page.select("form[data-tl-send-again]")
    assert viewer.post(reverse("tailored_activation_log:send_again", args=[send.pk])).status_code == 302
    assert ActivationSend.objects.get().status == "failed"
    assert "Activation log" in editor_menu(viewer) and "Triggers" not in editor_menu(viewer)


def editor_menu(client) -> str:
    return client.get(reverse("wagtailadmin_home")).content.decode()
