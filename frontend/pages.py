"""What a site's page model adds to get the editor's side of Tailored:

    from tailored.frontend.pages import PersonalizedPageMixin

    class HomePage(PersonalizedPageMixin, Page):
        body = StreamField([("personalized", PersonalizedBlock()), ...])

- preview as an audience: the preview mode menu offers one mode per segment, and the picker above
  the preview sets any mix of segments and context (tailored.frontend.preview explains how);
- the page editor's Experiments tab beside Content, Promote and Settings (a page class that sets
  its own `edit_handler` keeps it: use `tabs_with_experiments(content_panels)` there).
"""

from __future__ import annotations

from django.template.response import TemplateResponse
from wagtail.utils.decorators import cached_classmethod

from tailored.experiments.panels import tabs_with_experiments

from . import preview


class AudiencePreviewMixin:
    """Wagtail's preview, as an audience (segments from the mode menu or the picker's cookie)."""

    @property
    def preview_modes(self):
        return preview.preview_modes()

    def serve_preview(self, request, mode_name):
        audience = preview.apply_audience(request, mode_name)
        context = self.get_preview_context(request, mode_name)
        context["preview_audience"] = audience
        return TemplateResponse(request, self.get_preview_template(request, mode_name), context)


class PersonalizedPageMixin(AudiencePreviewMixin):
    """Preview as an audience and the Experiments tab; put it before `Page` in the bases."""

    @cached_classmethod
    def get_edit_handler(cls):
        if hasattr(cls, "edit_handler"):
            return cls.edit_handler.bind_to_model(cls)
        tabs = tabs_with_experiments(cls.content_panels, cls.promote_panels, cls.settings_panels)
        return tabs.bind_to_model(cls)
