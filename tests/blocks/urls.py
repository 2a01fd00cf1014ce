"""The site's URLconf plus the blocks' endpoints (until cms/urls.py includes blocks.urls)."""

from django.urls import include, path

from cms.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("", include("blocks.urls")), *site_urlpatterns]
