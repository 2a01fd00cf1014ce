from django.apps import AppConfig


class FrontendConfig(AppConfig):
    name = "tailored.frontend"
    label = "tailored_frontend"
    verbose_name = "Tailored SSR frontend"
