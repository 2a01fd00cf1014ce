"""The Activation menu in the Wagtail admin (issue 20): triggers, destinations and the log of sends.

- Triggers: a form with plain fields per kind (score and threshold, minutes, views, days,
  purchases or lifetime value) that assembles `Trigger.params` for the chosen kind only and
  checks it with the core's `trigger_spec_problem`, so the workers never load a trigger the
  form accepted and they would skip.
- Destinations: the kinds are the built-in and registered ones (`destinations.kinds()`); email
  templates must compile; a "Send test" button delivers a sample payload at once; a
  destination that triggers use cannot be deleted.
- Activation log: every send, newest first, filterable by status and trigger; dead letters
  (failed sends) can be sent again.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, ProtectedError, Q
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template import Template, TemplateSyntaxError
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views import View
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.utils import get_valid_next_url_from_request
from wagtail.admin.views import generic
from wagtail.admin.viewsets.base import ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet

from tailored.core import activation as core

from . import outbound
from .activation import sending
from .activation.destinations import PAYLOAD_FIELDS, kinds
from .activation.models import ActivationSend, Destination, Trigger
from .events.json_body import loads_finite
from .forms import compile_errors

TEMPLATES = "tailored/activation"
LOG_PAGE_SIZE = 50
DELIVERED_DAYS = 7
SHORT_VISITOR_CHARS = 8
SHORT_ERROR_CHARS = 120

# The plain fields each trigger kind reads into Trigger.params, in the order the form shows them.
PARAM_FIELDS: dict[str, tuple[str, ...]] = {
    core.SCORE_ABOVE: ("score", "threshold"),
    core.CART_ABANDONED: ("minutes",),
    core.BROWSE_ABANDONED: ("views", "minutes"),
    core.BACK_IN_STOCK: ("viewed_within_days",),
    core.PRICE_DROP: ("viewed_within_days",),
    core.LOYALTY_MILESTONE: ("purchases", "lifetime_value"),
}
SEGMENT_KINDS = (core.SEGMENT_ENTERED, core.SEGMENT_LEFT)


def may(request: HttpRequest, action: str, model) -> bool:
    """Whether the admin user holds the model's `action` permission (a superuser holds all)."""
    return request.user.has_perm(f"{model._meta.app_label}.{get_permission_codename(action, model._meta)}")


def kinds_using(name: str) -> str:
    """The trigger kinds that show a per-kind field, for the form's script (space-separated)."""
    if name == "segment":
        return " ".join(SEGMENT_KINDS)
    return " ".join(kind for kind, names in PARAM_FIELDS.items() if name in names)


# Triggers --------------------------------------------------------------------------------------


class ConditionField(forms.CharField):
    """An optional rule as JSON; cleans to the parsed value (None when empty). Whether it
    compiles is checked by the form, with the rule's own error path."""

    widget = forms.Textarea(attrs={"rows": 4})

    def to_python(self, value: object) -> Any:
        text = super().to_python(value)
        if not text.strip():
            return None
        try:
            # Strict: NaN or Infinity would pass json.loads and then fail the database's JSON check.
            return loads_finite(text)
        except ValueError as error:
            raise ValidationError(f"Not valid JSON: {error}", code="invalid_json") from None

    def prepare_value(self, value: object) -> object:
        # A stored rule (a dict) is shown as JSON; re-rendered input (a string) as typed.
        return json.dumps(value, indent=2) if isinstance(value, dict | list) else value


def kind_field(field: forms.Field, name: str) -> forms.Field:
    field.widget.attrs["data-tl-trigger-kinds"] = kinds_using(name)
    return field


class TriggerForm(WagtailAdminModelForm):
    score = kind_field(forms.CharField(
        required=False, max_length=64, help_text="The model score to watch, e.g. churn_risk or purchase_propensity."
    ), "score")
    threshold = kind_field(forms.FloatField(required=False, help_text="Fires when the score rises above it, e.g. 0.7."), "threshold")
    views = kind_field(forms.IntegerField(required=False, help_text="Views of the same product, e.g. 3."), "views")
    minutes = kind_field(forms.IntegerField(required=False, help_text="Minutes idle before it fires, e.g. 30."), "minutes")
    viewed_within_days = kind_field(forms.IntegerField(
        required=False, label="Viewed within (days)", help_text="Who viewed the product in this many days hears of it."
    ), "viewed_within_days")
    purchases = kind_field(forms.IntegerField(required=False, help_text="Number of purchases reached, e.g. 10."), "purchases")
    lifetime_value = kind_field(forms.FloatField(
        required=False, help_text="Or a lifetime value reached, e.g. 500 (either or both)."
    ), "lifetime_value")
    condition = ConditionField(
        required=False,
        help_text='Optional: a rule (JSON) the visitor must also match, e.g. {"field": "context.device", "op": "eq", "value": "mobile"}.',
    )

    field_order = [
        "name", "enabled", "kind", "segment", "score", "threshold", "views", "minutes", "viewed_within_days",
        "purchases", "lifetime_value", "condition", "cooldown_hours", "quiet_start", "quiet_end", "destination",
    ]

    class Meta:
        model = Trigger
        fields = ["name", "enabled", "kind", "segment", "condition", "cooldown_hours", "quiet_start", "quiet_end", "destination"]

    class Media:
        js = ["personalization/js/trigger_kind_fields.js"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].widget.attrs["data-tl-trigger-kinds"] = kinds_using("segment")
        self.fields["kind"].widget.attrs["data-tl-trigger-kind"] = ""
        for name, value in (self.instance.params or {}).items():
            if name in self.fields:
                self.initial[name] = value

    def clean_condition(self) -> Any:
        rule = self.cleaned_data.get("condition")
        if rule is not None and (error := compile_errors(rule)):
            raise ValidationError(f"The condition does not compile: {error}")
        return rule

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind:
            self._assemble_params(kind, cleaned)
        self._check_quiet_hours(cleaned.get("quiet_start"), cleaned.get("quiet_end"))
        return cleaned

    def _assemble_params(self, kind: str, cleaned: dict[str, Any]) -> None:
        """Trigger.params from the chosen kind's fields only (the others' values are dropped),
        checked as the workers check it."""
        names = PARAM_FIELDS.get(kind, ())
        params = {name: cleaned[name] for name in names if cleaned.get(name) not in (None, "")}
        if kind not in SEGMENT_KINDS:
            cleaned["segment"] = None  # only segment entry and exit watch one
        if any(name in self.errors for name in (*names, "segment")):
            return  # a field already says what is wrong with it
        problem = core.trigger_spec_problem(kind, params, cleaned.get("segment") is not None)
        if problem:
            self.add_error(field_at_fault(problem, kind), problem[0].upper() + problem[1:] + ".")
        self.instance.params = params

    def _check_quiet_hours(self, start, end) -> None:
        if (start is None) != (end is None):
            missing = "quiet_end" if end is None else "quiet_start"
            self.add_error(missing, "Set both the start and the end of the quiet hours, or neither.")
        elif start is not None and start == end:
            self.add_error("quiet_end", "The quiet hours start and end at the same time: leave both empty for none.")


def field_at_fault(problem: str, kind: str) -> str | None:
    """The form field a `trigger_spec_problem` sentence is about, or None for the whole form
    (a loyalty milestone missing both of its fields)."""
    if kind in SEGMENT_KINDS:
        return "segment"
    # "<kind> needs <field>, <field>" or "<field> must be a positive number, not ...".
    needed = problem.partition(" needs ")[2].split(", ")
    names = PARAM_FIELDS.get(kind, ())
    spoken = {name: name.replace("_", " ") for name in names}
    return next((name for name in names if spoken[name] in needed), None) or next(
        (name for name in names if problem.startswith(spoken[name] + " must")), None
    )


class TriggerIndexView(generic.IndexView):
    def get_base_queryset(self):
        since = timezone.now() - timedelta(days=DELIVERED_DAYS)
        delivered = Q(sends__status=ActivationSend.Status.DELIVERED, sends__delivered_at__gte=since)
        return super().get_base_queryset().select_related("destination").annotate(
            delivered_recently=Count("sends", filter=delivered)
        )


class TriggerViewSet(ModelViewSet):
    model = Trigger
    icon = "redirect"
    menu_label = "Triggers"
    url_prefix = "activation/triggers"
    url_namespace = "tailored_triggers"
    copy_view_enabled = False
    index_view_class = TriggerIndexView
    list_display = [
        "name", "kind", "destination", BooleanColumn("enabled"),
        Column("delivered_recently", label=f"Delivered ({DELIVERED_DAYS} days)", sort_key="delivered_recently"),
    ]
    list_filter = ["kind", "enabled", "destination"]
    search_fields = ["name"]

    def get_form_class(self, for_update=False):
        return TriggerForm


# Destinations ----------------------------------------------------------------------------------


class DestinationForm(WagtailAdminModelForm):
    kind = forms.ChoiceField(help_text="Built-in kinds, and those the site registers with register_tailored_destination.")
    # Without a scheme typed, https (Django 6's default, asked for now to avoid its warning).
    url = forms.URLField(
        required=False, max_length=2048, assume_scheme="https", label="URL",
        help_text=Destination._meta.get_field("url").help_text,
    )
    payload_fields = forms.MultipleChoiceField(
        required=False, label="Extra payload fields", widget=forms.CheckboxSelectMultiple,
        choices=[(name, f"{name}: {description}") for name, description in PAYLOAD_FIELDS.items()],
        help_text="What the payload carries about the visitor beyond what the kind always sends.",
    )
    # Write-only: a stored secret is never sent back to the browser (not as the input's value, not
    # after a failed submission). Blank keeps it; a new value replaces it; remove_secret clears it.
    secret = forms.CharField(
        required=False, max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=Destination._meta.get_field("secret").help_text,
    )
    remove_secret = forms.BooleanField(
        required=False, label="Remove the secret",
        help_text="Tick to clear the stored secret: sends are then unsigned (webhook) or without a bearer token (API).",
    )

    field_order = [
        "name", "kind", "url", "secret", "remove_secret", "email_subject", "email_body", "payload_fields", "enabled",
    ]

    class Meta:
        model = Destination
        fields = ["name", "kind", "url", "secret", "email_subject", "email_body", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(kind.kind, kind.label) for kind in kinds().values()]
        stored = self.instance.kind
        if stored and stored not in dict(choices):  # a plugin removed: keep the value visible
            choices.append((stored, f"{stored} (not registered)"))
        self.fields["kind"].choices = choices
        options = self.instance.options if isinstance(self.instance.options, dict) else {}
        self.initial["payload_fields"] = list(options.get("fields", ()))
        self.stored_secret = self.instance.secret if self.instance.pk else ""
        self.initial.pop("secret", None)  # never rendered, whatever the widget
        if self.stored_secret:
            self.fields["secret"].help_text = (
                "A secret is set (it is never shown). Leave this blank to keep it, type a new one to replace it, "
                "or tick “Remove the secret”. " + str(self.fields["secret"].help_text)
            )
        else:
            del self.fields["remove_secret"]  # nothing to remove

    def clean(self):
        cleaned = super().clean()
        kind = kinds().get(cleaned.get("kind", ""))
        if kind is None and cleaned.get("kind"):
            self.add_error("kind", f"No destination kind {cleaned['kind']!r} is registered on this site.")
        if kind is not None and kind.needs_url and not cleaned.get("url") and "url" not in self.errors:
            self.add_error("url", f"A {kind.label.lower()} destination needs the URL it sends to.")
        refusal = outbound.url_refusal(cleaned["url"]) if cleaned.get("url") else None
        if refusal:
            self.add_error("url", refusal)
        if kind is not None and kind.kind == "email":
            self._check_email_templates(cleaned)
        self._keep_or_remove_secret(cleaned)
        options = dict(self.instance.options) if isinstance(self.instance.options, dict) else {}
        options["fields"] = list(cleaned.get("payload_fields") or ())
        self.instance.options = options
        return cleaned

    def _keep_or_remove_secret(self, cleaned: dict[str, Any]) -> None:
        """Blank keeps the stored secret, a new value replaces it, "Remove the secret" clears it."""
        if "secret" not in cleaned:
            return  # too long: its own error says so
        if cleaned.get("remove_secret"):
            if cleaned["secret"]:
                self.add_error("secret", "Type a new secret or tick “Remove the secret”, not both.")
            else:
                cleaned["secret"] = ""
        elif not cleaned["secret"]:
            cleaned["secret"] = self.stored_secret

    def _check_email_templates(self, cleaned: dict[str, Any]) -> None:
        for name, what in (("email_subject", "subject"), ("email_body", "body")):
            text = cleaned.get(name, "")
            if not text.strip():
                self.add_error(name, f"An email destination needs its {what}.")
                continue
            try:
                Template(text)
            except TemplateSyntaxError as error:
                self.add_error(name, f"The {what} is not a valid Django template: {error}")


def triggers_using(destination: Destination) -> list[str]:
    return list(destination.triggers.order_by("name").values_list("name", flat=True))


class DestinationDeleteView(generic.DeleteView):
    @property
    def confirmation_message(self):
        names = triggers_using(self.object)
        if names:
            return f"Triggers send to {self.object}: {', '.join(names)}. Point them elsewhere or delete them first."
        return f"Delete the destination {self.object}? Its past sends stay in the activation log."

    def form_valid(self, form):
        names = triggers_using(self.object)
        if not names:
            try:
                return super().form_valid(form)
            except ProtectedError as error:  # a trigger added since the check above
                names = sorted(str(trigger) for trigger in error.protected_objects)
        messages.error(self.request, f"Triggers send to {self.object}: {', '.join(names)}. Point them elsewhere first.")
        return HttpResponseRedirect(self.get_success_url())


class DestinationEditView(generic.EditView):
    send_test_url_name = None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if may(self.request, "change", Destination):
            context["send_test_url"] = reverse(self.send_test_url_name, args=[self.object.pk])
        return context


class DestinationSendTestView(View):
    """POST: deliver a sample payload to the saved destination now, and say how it went."""

    http_method_names = ["post"]
    edit_url_name = None

    def post(self, request: HttpRequest, pk: int):
        if not may(request, "change", Destination):
            raise PermissionDenied
        destination = get_object_or_404(Destination, pk=pk)
        send = sending.send_test(destination)
        if send.status == ActivationSend.Status.DELIVERED:
            where = destination.url or send.payload.get("email") or destination.name
            messages.success(request, f"Delivered to {where}.")
        else:
            messages.error(request, f"The test send to {destination} failed: {send.last_error}")
        return HttpResponseRedirect(reverse(self.edit_url_name, args=[pk]))


class DestinationViewSet(ModelViewSet):
    model = Destination
    icon = "mail"
    menu_label = "Destinations"
    url_prefix = "activation/destinations"
    url_namespace = "tailored_destinations"
    copy_view_enabled = False
    edit_view_class = DestinationEditView
    delete_view_class = DestinationDeleteView
    edit_template_name = f"{TEMPLATES}/destination_edit.html"
    delete_template_name = f"{TEMPLATES}/destination_delete.html"
    list_display = ["name", "kind", "url", BooleanColumn("enabled"), "updated_at"]
    search_fields = ["name", "url"]

    def get_form_class(self, for_update=False):
        return DestinationForm

    def get_edit_view_kwargs(self, **kwargs):
        return super().get_edit_view_kwargs(send_test_url_name=self.get_url_name("send_test"), **kwargs)

    @property
    def send_test_view(self):
        return self.construct_view(DestinationSendTestView, edit_url_name=self.get_url_name("edit"))

    def get_urlpatterns(self):
        return [*super().get_urlpatterns(), path("send-test/<int:pk>/", self.send_test_view, name="send_test")]


# Activation log --------------------------------------------------------------------------------


def short_visitor(send: ActivationSend) -> str:
    return send.visitor_id[:SHORT_VISITOR_CHARS] + "…" if len(send.visitor_id) > SHORT_VISITOR_CHARS else send.visitor_id


def short_error(send: ActivationSend) -> str:
    error = send.last_error
    return error if len(error) <= SHORT_ERROR_CHARS else error[:SHORT_ERROR_CHARS] + "…"


class SendAgainColumn(Column):
    """A "Send again" POST button on failed rows (the dead letters)."""

    cell_template_name = f"{TEMPLATES}/send_again_cell.html"

    def __init__(self, *args, retry_url_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_url_name = retry_url_name

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        request = parent_context.get("request")
        context["csrf_token"] = parent_context.get("csrf_token")
        context["next"] = request.get_full_path() if request else ""
        may_retry = instance.status == ActivationSend.Status.FAILED and request and may(request, "change", ActivationSend)
        context["retry_url"] = reverse(self.retry_url_name, args=[instance.pk]) if may_retry else None
        return context


class ActivationLogView(generic.IndexView):
    any_permission_required = ["view", "change"]
    page_title = "Activation log"
    retry_url_name = None

    @cached_property
    def no_results_message(self):
        if self.is_filtering:
            return "No sends match these filters."
        return (
            "No sends yet. Each time a trigger fires for a known visitor who granted marketing, the send "
            "appears here with its delivery status; failed sends (dead letters) can be sent again. "
            "Test sends from a destination's page appear too."
        )

    def get_base_queryset(self):
        return super().get_base_queryset().select_related("trigger", "destination")

    @property
    def columns(self):
        return [
            Column("created_at", label="Fired", sort_key="created_at"),
            Column("trigger", accessor=lambda send: send.trigger or ("Test send" if send.test else "(deleted trigger)")),
            Column("destination", accessor=lambda send: send.destination or "(deleted destination)"),
            Column("visitor", label="Visitor", accessor=short_visitor),
            Column("status", accessor="get_status_display", sort_key="status"),
            Column("attempts"),
            Column("last_error", label="Last error", accessor=short_error),
            BooleanColumn("test"),
            SendAgainColumn("send_again", label="", retry_url_name=self.retry_url_name),
        ]


class SendAgainView(View):
    """POST: a dead letter becomes pending again, due now; the workers deliver it."""

    http_method_names = ["post"]
    index_url_name = None

    def post(self, request: HttpRequest, pk: int):
        if not may(request, "change", ActivationSend):
            raise PermissionDenied
        send = get_object_or_404(ActivationSend, pk=pk)
        if send.status != ActivationSend.Status.FAILED:
            messages.warning(request, f"Only failed sends can be sent again; this one is {send.get_status_display().lower()}.")
        else:
            sending.retry(send)
            where = send.destination or "a deleted destination"
            messages.success(request, f"The send to {where} is pending again: the workers deliver it on their next turn.")
        return HttpResponseRedirect(get_valid_next_url_from_request(request) or reverse(self.index_url_name))


class ActivationLogViewSet(ModelViewSet):
    """The log only lists and retries: sends are made by triggers and the send-test button."""

    model = ActivationSend
    icon = "history"
    menu_label = "Activation log"
    url_prefix = "activation/log"
    url_namespace = "tailored_activation_log"
    add_to_reference_index = False
    copy_view_enabled = False
    index_view_class = ActivationLogView
    list_filter = ["status", "trigger"]
    list_per_page = LOG_PAGE_SIZE

    def get_common_view_kwargs(self, **kwargs):
        # No add, edit or delete screens: the log's rows link nowhere.
        return super().get_common_view_kwargs(
            add_url_name=None, edit_url_name=None, delete_url_name=None, history_url_name=None,
            usage_url_name=None, **kwargs,
        )

    def get_index_view_kwargs(self, **kwargs):
        return super().get_index_view_kwargs(retry_url_name=self.get_url_name("send_again"), **kwargs)

    @property
    def send_again_view(self):
        return self.construct_view(SendAgainView, index_url_name=self.get_url_name("index"))

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("send-again/<int:pk>/", self.send_again_view, name="send_again"),
        ]

    def get_permissions_to_register(self):
        # Editors who watch the log get "view"; those who may send dead letters again, "change".
        content_type = ContentType.objects.get_for_model(ActivationSend)
        codenames = [get_permission_codename(action, ActivationSend._meta) for action in ("view", "change")]
        return Permission.objects.filter(content_type=content_type, codename__in=codenames)

    def register_admin_url_finder(self):
        pass  # rows have no edit screen to link to


class ActivationViewSetGroup(ViewSetGroup):
    menu_label = "Activation"
    menu_icon = "resubmit"
    menu_order = 250
    items = (TriggerViewSet, DestinationViewSet, ActivationLogViewSet)
