"""The Jinja2 environment for server-rendered pages."""

from django.templatetags.static import static
from django.urls import reverse
from jinja2 import Environment

from tailored.services import explain_visitor, is_editor, read_consent


def explanation(request):
    """For a logged-in editor asking with ?explain=1: every segment, matched or not, and why."""
    if request.GET.get("explain") != "1" or not is_editor(request):
        return None
    return explain_visitor(request)


def environment(**options) -> Environment:
    env = Environment(**options)
    env.globals.update(static=static, url=reverse, consent=read_consent, explanation=explanation)
    return env
