"""A Jinja2 environment with Django's `static` and `url` (reverse) as globals, as Django's
documentation suggests: OPTIONS["environment"] = "tailored.frontend.jinja2env.environment".
Tailored's own globals (`tailored_head()`, `tailored_body()`) come from the extension
`tailored.frontend.jinja2tags.TailoredExtension`."""

from django.templatetags.static import static
from django.urls import reverse
from jinja2 import Environment


def environment(**options) -> Environment:
    env = Environment(**options)
    env.globals.update(static=static, url=reverse)
    return env
