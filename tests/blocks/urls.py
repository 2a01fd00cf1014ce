"""The site's URLconf plus the blocks' endpoints (until cms/urls.py includes tailored.blocks.urls)."""

from django.urls import include, path

from cms.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("", include("tailored.blocks.urls")), *site_urlpatterns]
