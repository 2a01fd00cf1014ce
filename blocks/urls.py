"""Public endpoints the blocks post to. Include in the site's URLconf: `path("", include("tailored.blocks.urls"))`."""

from django.urls import path

from . import views

app_name = "tailored_blocks"
urlpatterns = [path("preferences/", views.save_preferences, name="preferences")]
