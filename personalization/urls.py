from django.urls import path

from . import views

app_name = "personalization"
urlpatterns = [path("events", views.events, name="events")]
