"""CRM traits in the Wagtail admin (Settings → CRM traits, issue 20 item 4): editors see and edit
the declarations a CRM's values are checked against and that rules name as `trait.<key>`.

A key is fixed once created (stored values and rules name it). A kind, or a choice list, that
stored values or rules disagree with is refused with the reason and what to do first: a value
of the wrong kind would read as absent, and a rule would stop compiling. "Rules" are segment
rules and activation triggers' conditions: every one naming the trait is compiled against the
proposed declaration, and the change is refused if one that compiles now would not. A trait
that rules name cannot be deleted (those segments would match no one, those triggers would be
skipped)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet

from tailored.core import fields as rule_fields
from tailored.core.rules import RuleError, compile_rule

from .activation.models import Trait, Trigger, VisitorTraits
from .activation.traits import MAX_TEXT_CHARS, refresh_declarations, typed_value
from .events.schema import EVENT_TYPES
from .models import Segment
from .visitor_admin import PERMISSION as LOOK_UP_VISITORS

MAX_CHOICES = 100
SHOWN_EXAMPLES = 3


class TraitForm(WagtailAdminModelForm):
    choices = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 5}),
        help_text='For "one of a list": the allowed values, one per line (e.g. silver, then gold).',
    )

    class Meta:
        model = Trait
        fields = ["key", "label", "kind", "choices", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["choices"] = "\n".join(map(str, self.instance.choices or ()))
        if self.instance.pk:  # stored values and rules name the key
            self.fields["key"].disabled = True
            self.fields["key"].help_text = "Fixed once created: stored values and rules name it as trait.<key>."

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if key != key.lower():
            raise ValidationError("Use lower-case letters, digits, _ and - only (rules name it as trait.%(key)s).", params={"key": key.lower()})
        return key

    def clean_choices(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data.get("choices", "").splitlines() if line.strip()]
        if len(set(lines)) != len(lines):
            raise ValidationError("Each choice once, please.")
        if len(lines) > MAX_CHOICES or any(len(line) > MAX_TEXT_CHARS for line in lines):
            raise ValidationError(f"At most {MAX_CHOICES} choices of at most {MAX_TEXT_CHARS} characters each.")
        return lines

    def clean(self):
        cleaned = super().clean()
        kind, choices = cleaned.get("kind"), cleaned.get("choices") or []
        if kind == Trait.Kind.CHOICE and not choices:
            self.add_error("choices", 'A "one of a list" trait needs its choices.')
        if kind != Trait.Kind.CHOICE:
            cleaned["choices"] = []
        if self.instance.pk and kind and not self.errors:
            self._refuse_disagreeing_change(kind, cleaned["choices"])
        return cleaned

    def _refuse_disagreeing_change(self, kind: str, choices: list[str]) -> None:
        old = Trait.objects.get(pk=self.instance.pk)
        proposed = Trait(key=old.key, label=self.cleaned_data.get("label") or old.label, kind=kind, choices=choices)
        if old.kind != kind or not set(choices) >= set(old.choices or ()):
            self._refuse_disagreeing_values(proposed)
        broken = _rules_broken_by(proposed)
        if broken:  # the field the editor changed: the kind, else the choices
            field = "kind" if old.kind != kind else "choices"
            self.add_error(field, (
                f"Rules use trait.{old.key} in a way this change would break: {'; '.join(broken)}. "
                "Change their rules first."
            ))

    def _refuse_disagreeing_values(self, proposed: Trait) -> None:
        wrong, examples = _disagreeing_values(proposed)
        if wrong:
            # Stored values are visitors' data (an email, a CRM id): quoted only to an editor who
            # may look visitors up (Visitors screen); anyone else who may change traits gets the count.
            user = getattr(self, "for_user", None)
            shown = f" (e.g. {', '.join(examples)})" if user is not None and user.has_perm(LOOK_UP_VISITORS) else ""
            self.add_error("kind", (
                f"{wrong} visitor(s) have a stored value that would not fit{shown}. "
                "Send the new values (POST /api/traits or tailored_import_traits), or remove these "
                "with a value of null, then change the kind or choices."
            ))


def _disagreeing_values(trait: Trait) -> tuple[int, list[str]]:
    """How many stored values of the trait would not fit its new declaration, and a few of them."""
    wrong, examples = 0, []
    for values in VisitorTraits.objects.filter(values__has_key=trait.key).values_list("values", flat=True).iterator():
        try:
            typed_value(trait, values[trait.key])
        except ValueError:
            wrong += 1
            if len(examples) < SHOWN_EXAMPLES:
                examples.append(json.dumps(values[trait.key]))
    return wrong, examples


def _rules_naming(key: str) -> list[tuple[str, object]]:
    """(who, rule) of each segment rule and trigger condition that names trait.<key>, e.g.
    ('segment "Gold members"', {...}): both stop working when the trait does."""
    name = f"{rule_fields.TRAIT_PREFIX}{key}"
    segments = [(f'segment "{segment.name}"', segment.rule) for segment in Segment.objects.only("name", "rule")]
    triggers = [(f'trigger "{trigger.name}"', trigger.condition) for trigger in Trigger.objects.only("name", "condition")]
    return [(who, rule) for who, rule in (*segments, *triggers) if _names_field(rule, name)]


def _names_field(node: object, name: str) -> bool:
    """Whether a rule (any nesting of all/any/not) has a leaf comparing the field `name`; a
    value that merely reads like one (a path of "trait.plan") does not count."""
    if isinstance(node, list):
        return any(_names_field(child, name) for child in node)
    if not isinstance(node, dict):
        return False
    return node.get("field") == name or any(_names_field(child, name) for child in node.values() if isinstance(child, dict | list))


def _rules_broken_by(proposed: Trait) -> list[str]:
    """Each rule naming the trait that compiles with today's declarations but would not with
    `proposed`, as 'segment "Gold": $.value: must be one of silver, got 'gold''. A rule broken
    for another reason already is left to its own page: this change does not make it worse."""
    refresh_declarations(force=True)  # the rows as they are now, not as read up to a second ago
    current = dict(rule_fields.TRAIT_FIELDS)
    try:
        changed = rule_fields.trait_field(proposed.key, proposed.kind, proposed.label, proposed.choices)
    except ValueError:
        return []  # a key rules cannot name (a row written by code): no rule compiles with it
    future = {**current, proposed.key: changed}
    broken = []
    for who, rule in _rules_naming(proposed.key):
        if _compile_problem(rule, current) is None and (problem := _compile_problem(rule, future)):
            broken.append(f"{who}: {problem}")
    return broken


def _compile_problem(rule: object, traits: dict[str, rule_fields.Field]) -> RuleError | None:
    try:
        compile_rule(rule, known_events=EVENT_TYPES, traits=traits)
    except RuleError as error:
        return error
    return None


def _users_of(key: str) -> list[str]:
    """Who names trait.<key> in a rule (segments and triggers), for the delete check."""
    return [who for who, _rule in _rules_naming(key)]


class TraitDeleteView(generic.DeleteView):
    @property
    def confirmation_message(self):
        users = _users_of(self.object.key)
        if users:
            return f"Rules use trait.{self.object.key}: {', '.join(users)}. Change their rules before deleting it."
        return f"Delete the trait {self.object.key}? Stored values stay in visitors' records (export, erasure) until replaced."

    def form_valid(self, form):
        users = _users_of(self.object.key)
        if users:  # segments would match no one, and triggers would be skipped ("no trait ... is declared")
            messages.error(self.request, f"Rules use trait.{self.object.key}: {', '.join(users)}. Change their rules first.")
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


class TraitViewSet(ModelViewSet):
    model = Trait
    delete_view_class = TraitDeleteView
    icon = "tag"
    menu_label = "CRM traits"
    add_to_settings_menu = True
    copy_view_enabled = False
    list_display = ["label", "key", "kind", "updated_at"]
    search_fields = ["key", "label", "description"]

    def get_form_class(self, for_update=False):
        return TraitForm
