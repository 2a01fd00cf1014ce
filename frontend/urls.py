from django.urls import path

from . import views

app_name = "tailored_frontend"
urlpatterns = [
    path("consent/", views.consent, name="consent"),
    path("privacy-centre/", views.privacy_centre, name="privacy"),
    path("privacy-centre/data", views.privacy_data, name="privacy-data"),
    path("privacy-centre/erase", views.privacy_erase, name="privacy-erase"),
]
