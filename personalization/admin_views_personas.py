"""The persona admin (issue 7, item 3): editors rename the personas training found, and turn one
into a segment: the rule a depth-3 tree proposes, its fidelity to the cluster and its reach now,
shown before saving; saving creates a Segment and opens it in the rule builder."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from wagtail.admin.panels import FieldPanel, ObjectList, Panel
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.snippets.views.snippets import SnippetViewSet

try:  # Wagtail 8 registers model permission policies; Wagtail 7 reads the viewset's attribute
    from wagtail.permissions import register_permission_policy
except ImportError:
    register_permission_policy = None

from tailored.core.rules import compile_rule
from tailored.events.schema import EVENT_TYPES

from . import ml
from .admin_views import LIVE_HOURS, live_count
from .ml import registry
from .models import PersonaLabel, Segment
from .rule_sentences import sentence

if TYPE_CHECKING:
    from .ml.persona_rules import ProposedRule

logger = logging.getLogger(__name__)
SEGMENT_URL_NAMESPACE = "wagtailsnippets_tailored_segment"
PERSONA_URL_NAMESPACE = "wagtailsnippets_tailored_personalabel"


def current_proposal(slug: str) -> tuple[ProposedRule | None, str | None]:
    """The proposed rule for persona `slug` from the current persona model, or why there is none."""
    if not ml.available():
        return None, f"{ml.requirement_message('Proposing a rule for a persona')}, then run `manage.py tailored_train`."
    # scikit-learn is imported here, not with the admin: web processes start without it.
    from .ml.persona_rules import propose_rule
    from .ml.personas import PersonaModel
    from .ml.scoring import PERSONAS

    loaded = registry.load(PERSONAS)
    if loaded is None or not isinstance(loaded.artifact, PersonaModel):
        return None, "No persona model is available yet: run `manage.py tailored_train`."
    model: PersonaModel = loaded.artifact
    if model.persona(slug) is None:
        return None, f"The current persona model (version {loaded.version}) does not find this persona any more."
    proposal = propose_rule(model, slug)
    if proposal.rule is None:
        return None, "No part of the audience is mostly this persona, so no rule describes it."
    return proposal, None


def persona_segment(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the proposed rule, its fidelity and reach. POST: save it as a segment."""
    label = get_object_or_404(PersonaLabel, pk=pk)
    if not request.user.has_perm("tailored.add_segment"):
        raise PermissionDenied
    proposal, problem = current_proposal(label.slug)
    if request.method == "POST" and proposal is not None:
        segment = save_segment(label, proposal, enabled=request.POST.get("enabled") == "on")
        return redirect(reverse(f"{SEGMENT_URL_NAMESPACE}:edit", args=[segment.pk]))
    context: dict[str, Any] = {"label": label, "proposal": proposal, "problem": problem, "live_hours": LIVE_HOURS}
    if proposal is not None:
        counted = live_count(compile_rule(proposal.rule, known_events=EVENT_TYPES))
        context.update(
            # The sentence the ?explain=1 panel shows for the same rule (one renderer for both).
            sentence=sentence(proposal.rule),
            rule_json=json.dumps(proposal.rule, indent=2),
            count=counted[0] if counted else None,
            scanned=counted[1] if counted else None,
            index_url=reverse(f"{PERSONA_URL_NAMESPACE}:list"),
        )
    return TemplateResponse(request, "personalization/personas/make_segment.html", context)


def save_segment(label: PersonaLabel, proposal: ProposedRule, enabled: bool = False) -> Segment:
    """A new segment holding the proposed rule (disabled unless asked), with a free slug."""
    base = f"persona-{label.slug}"[:60]
    slug, n = base, 2
    while Segment.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    description = (
        f"From the persona \u201c{label.name}\u201d: {sentence(proposal.rule)} Agrees with the clustering on "
        f"{proposal.accuracy:.0%} of training visitors (precision {proposal.precision:.0%}, recall {proposal.recall:.0%})."
    )
    return Segment.objects.create(name=label.name[:100], slug=slug, description=description, enabled=enabled, rule=proposal.rule)


class MakeSegmentPanel(Panel):
    """A link from a persona's edit view to "Make this persona a segment"."""

    class BoundPanel(Panel.BoundPanel):
        template_name = "personalization/personas/make_segment_panel.html"

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            if self.instance.pk:
                context["make_segment_url"] = reverse(f"{PERSONA_URL_NAMESPACE}:make_segment", args=[self.instance.pk])
            return context


class TrainedOnlyPolicy(ModelPermissionPolicy):
    """Personas come from training: editors rename them but never add one by hand."""

    def user_has_permission(self, user, action):
        return action != "add" and super().user_has_permission(user, action)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)


PERSONA_POLICY = TrainedOnlyPolicy(PersonaLabel)
if register_permission_policy is not None:
    register_permission_policy(PersonaLabel, PERSONA_POLICY)


class PersonaLabelViewSet(SnippetViewSet):
    model = PersonaLabel
    if register_permission_policy is None:  # Wagtail 7 reads the policy from the viewset
        permission_policy = PERSONA_POLICY
    icon = "user"
    menu_label = "Personas"
    menu_order = 251
    add_to_admin_menu = True
    list_display = ["name", "slug", "size", "active", "model_version"]
    list_filter = ["active"]
    search_fields = ["name", "slug", "description"]
    edit_handler = ObjectList(
        [
            FieldPanel("name"),
            FieldPanel("slug", read_only=True),
            FieldPanel("description", read_only=True),
            FieldPanel("size", read_only=True),
            MakeSegmentPanel(heading="Segment"),
        ]
    )

    def get_urlpatterns(self):
        return [*super().get_urlpatterns(), path("make-segment/<int:pk>/", persona_segment, name="make_segment")]
