"""Every URL of the plugin, included once by the site: `path("", include("tailored.urls"))`, before
Wagtail's own. The events and data-rights API sits under `api/`, the consent answer at `consent/`,
the onboarding survey at `preferences/`, and GraphQL at `graphql/` when the `graphql` extra is
installed and `grapple` and `graphene_django` are in INSTALLED_APPS."""

from django.conf import settings
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from . import views
from .activation import views as activation_views
from .activation.traits_api import traits_view
from .api import graphql_enabled

api_patterns = [
    path("events", views.events, name="events"),
    path("me/data", views.my_data, name="my-data"),
    path("me", views.erase_me, name="erase-me"),
    path("traits", traits_view, name="traits"),  # a CRM's traits, with an API key (issue 20)
    path("identify", activation_views.identify, name="identify"),
]


def graphql_patterns() -> list:
    if not graphql_enabled():
        return []
    from .api.views import TailoredGraphQLView

    # Headless clients post JSON from their own origin; CSRF does not apply to them. The view adds
    # persisted operations, query limits, server-to-server visitors and CORS (issue 6).
    view = csrf_exempt(TailoredGraphQLView.as_view(graphiql=settings.DEBUG))
    return [path("graphql/", view, name="graphql")]


def metrics_patterns() -> list:
    # Prometheus text format, off unless METRICS_ENABLED (issue 17); the view checks the token.
    from .insights.metrics import metrics_view

    return [path("metrics", metrics_view, name="tailored-metrics")]


urlpatterns = [
    path("api/", include((api_patterns, "tailored"))),
    *metrics_patterns(),
    path("", include("tailored.frontend.urls")),
    path("", include("tailored.blocks.urls")),
    *graphql_patterns(),
]
