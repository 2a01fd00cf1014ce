from django.urls import path

from . import views

app_name = "tailored_frontend"
urlpatterns = [path("consent/", views.consent, name="consent")]
