"""The Jinja2 environment for server-rendered pages."""

from django.templatetags.static import static
from django.urls import reverse
from jinja2 import Environment

from personalization.services import read_consent


def environment(**options) -> Environment:
    env = Environment(**options)
    env.globals.update(static=static, url=reverse, consent=read_consent)
    return env
