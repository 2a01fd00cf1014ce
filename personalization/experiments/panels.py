"""The page editor's "Experiments" tab: create and edit a page's experiments beside its content."""

from __future__ import annotations

from collections.abc import Sequence

from django.urls import reverse
from django.utils.html import format_html
from wagtail.admin.panels import HelpPanel, InlinePanel, ObjectList, Panel, TabbedInterface
from wagtail.models import Page

from .forms import ExperimentsPageForm

HELP = (
    "<p>Compare the variants of a personalized block, the alternatives of an experiment block, or whole "
    "pages. Set the status to <b>Running</b> and publish to start; results (with charts, and "
    "<i>Promote winner</i>) are under <b>Reports → Experiments</b>.</p>"
)


def tabs_with_experiments(
    content_panels: Sequence[Panel],
    promote_panels: Sequence[Panel] = Page.promote_panels,
    settings_panels: Sequence[Panel] = Page.settings_panels,
) -> TabbedInterface:
    """Wagtail's usual Content / Promote / Settings tabs, plus Experiments."""
    return TabbedInterface(
        [
            ObjectList(content_panels, heading="Content"),
            ObjectList(promote_panels, heading="Promote"),
            ObjectList(settings_panels, heading="Settings"),
            ObjectList([HelpPanel(HELP), InlinePanel("experiments", label="Experiment")], heading="Experiments"),
        ],
        # Checks across the page's experiments (one test per block, layer shares): see forms.py.
        base_form_class=ExperimentsPageForm,
    )


class ResultsLinkPanel(Panel):
    """In each experiment of the tab: a link to its results and actions, once it is saved."""

    class BoundPanel(Panel.BoundPanel):
        def render_html(self, parent_context=None):
            pk = getattr(self.instance, "pk", None)
            if not pk:
                return format_html("<p class=\"help\">{}</p>", "Publish the page to save the experiment; its results will be linked here.")
            url = reverse("tailored_experiments:detail", args=[pk])
            return format_html('<p><a class="button button-small button-secondary" href="{}">Results, start, pause, promote</a></p>', url)
