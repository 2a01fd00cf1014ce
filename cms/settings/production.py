import os

from .base import *  # noqa: F403

DEBUG = False
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

# Headless clients may run only the committed operations of graphql/operations/.
PERSONALIZATION = {**PERSONALIZATION, "GRAPHQL_PERSISTED_ONLY": True}  # noqa: F405
