"""The page editor's "Experiments" tab: create and edit a page's experiments beside its content."""

from __future__ import annotations

from collections.abc import Sequence

from wagtail.admin.panels import HelpPanel, InlinePanel, ObjectList, Panel, TabbedInterface
from wagtail.models import Page

HELP = (
    "<p>Compare the variants of a personalized block, the alternatives of an experiment block, or whole "
    "pages. Set the status to <b>Running</b> and publish to start; results (with charts, and "
    "<i>Promote winner</i>) are under <b>Reports → Experiments</b>.</p>"
)


def tabs_with_experiments(content_panels: Sequence[Panel]) -> TabbedInterface:
    """Wagtail's usual Content / Promote / Settings tabs, plus Experiments."""
    return TabbedInterface(
        [
            ObjectList(content_panels, heading="Content"),
            ObjectList(Page.promote_panels, heading="Promote"),
            ObjectList(Page.settings_panels, heading="Settings"),
            ObjectList([HelpPanel(HELP), InlinePanel("experiments", label="Experiment")], heading="Experiments"),
        ]
    )
