"""The Jinja2 environment for server-rendered pages."""

from django.templatetags.static import static
from django.urls import reverse
from jinja2 import Environment

from personalization.services import explain_visitor, read_consent


def explanation(request):
    """For a logged-in editor asking with ?explain=1: every segment, matched or not, and why."""
    if request.GET.get("explain") != "1":
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("wagtailadmin.access_admin"):
        return None
    return explain_visitor(request)


def environment(**options) -> Environment:
    env = Environment(**options)
    env.globals.update(static=static, url=reverse, consent=read_consent, explanation=explanation)
    return env
