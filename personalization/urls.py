from django.urls import path

from . import views

app_name = "personalization"
urlpatterns = [
    path("events", views.events, name="events"),
    path("me/data", views.my_data, name="my-data"),
    path("me", views.erase_me, name="erase-me"),
]
