"""CRM traits in the Wagtail admin (Settings → CRM traits, issue 20 item 4): editors see and edit
the declarations a CRM's values are checked against and that rules name as `trait.<key>`.

A key is fixed once created (stored values and rules name it). A kind, or a choice list, that
stored values or segment rules disagree with is refused with the reason and what to do first:
a value of the wrong kind would read as absent, and a rule would stop compiling. A trait that
segment rules name cannot be deleted (those segments would stop matching anyone)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet

from .activation.models import Trait, VisitorTraits
from .activation.traits import MAX_TEXT_CHARS, typed_value
from .models import Segment

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
        if old.kind == kind and set(choices) >= set(old.choices or ()):
            return  # the same kind, no choice taken away: every stored value still fits
        proposed = Trait(key=old.key, kind=kind, choices=choices)
        wrong, examples = _disagreeing_values(proposed)
        if wrong:
            self.add_error("kind", (
                f"{wrong} visitor(s) have a stored value that would not fit (e.g. {', '.join(examples)}). "
                "Send the new values (POST /api/traits or tailored_import_traits), or remove these "
                "with a value of null, then change the kind or choices."
            ))
        if old.kind != kind and (names := _segments_naming(old.key)):
            self.add_error("kind", f"Segments use trait.{old.key} with its current kind: {', '.join(names)}. Change their rules first.")


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


def _segments_naming(key: str) -> list[str]:
    needle = json.dumps(f"trait.{key}")
    return [segment.name for segment in Segment.objects.only("name", "rule") if needle in json.dumps(segment.rule)]


class TraitDeleteView(generic.DeleteView):
    @property
    def confirmation_message(self):
        names = _segments_naming(self.object.key)
        if names:
            return f"Segments use trait.{self.object.key}: {', '.join(names)}. Change their rules before deleting it."
        return f"Delete the trait {self.object.key}? Stored values stay in visitors' records (export, erasure) until replaced."

    def form_valid(self, form):
        names = _segments_naming(self.object.key)
        if names:  # their rules would stop compiling, and the segments would match no one
            messages.error(self.request, f"Segments use trait.{self.object.key}: {', '.join(names)}. Change their rules first.")
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
