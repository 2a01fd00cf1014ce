from django.conf import settings
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

from tailored.api.views import TailoredGraphQLView

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    # Headless clients post JSON from their own origin; CSRF does not apply to them. The view adds
    # persisted operations, query limits, server-to-server visitors and CORS (issue 6).
    path("graphql/", csrf_exempt(TailoredGraphQLView.as_view(graphiql=settings.DEBUG)), name="graphql"),
    path("api/", include("tailored.urls")),
    path("", include("tailored.frontend.urls")),
    path("", include("tailored.blocks.urls")),
    path("", include(wagtail_urls)),
]

if settings.DEBUG:
    from django.conf.urls.static import static
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns = staticfiles_urlpatterns() + static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT) + urlpatterns
