"""API keys in the Wagtail admin (Settings → API keys): create a key for a headless frontend's
server, see when each was last used, revoke or delete it. The secret is shown once, on the page
that follows creation; only its SHA-256 is stored, so a lost key is replaced, never recovered."""

from __future__ import annotations

from django.forms import modelform_factory
from django.template.response import TemplateResponse
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet

from .models import ApiKey
from .server_visitors import create_api_key, forget_api_keys


class ApiKeyCreateView(generic.CreateView):
    def save_instance(self):
        key, self.secret = create_api_key(self.form.cleaned_data["name"])
        return key

    def save_action(self):
        # A page, not a redirect: the secret must not travel through a URL or a stored message.
        context = {"key": self.object, "secret": self.secret, "index_url": self.get_success_url(), "header_icon": "key"}
        response = TemplateResponse(self.request, "personalization/api_keys/created.html", context)
        response["Cache-Control"] = "no-store"
        return response


class ApiKeyEditView(generic.EditView):
    def save_instance(self):
        instance = super().save_instance()
        forget_api_keys()  # a revoked key is refused by this process at once
        return instance


class ApiKeyViewSet(ModelViewSet):
    model = ApiKey
    icon = "key"
    menu_label = "API keys"
    add_to_settings_menu = True
    copy_view_enabled = False
    form_fields = ["name", "active"]
    list_display = ["name", "prefix", "active", "created_at", "last_used_at"]
    add_view_class = ApiKeyCreateView
    edit_view_class = ApiKeyEditView

    def get_add_view_kwargs(self, **kwargs):
        # A new key is active; its name is all there is to ask.
        return super().get_add_view_kwargs(form_class=modelform_factory(ApiKey, fields=["name"]), **kwargs)
