"""Settings shared by every environment. Environment variables switch the backing services:
DATABASE_URL (SQLite by default) and REDIS_URL (the in-process profile store by default)."""

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def installation_secret_key(path: Path) -> str:
    """DJANGO_SECRET_KEY, else this installation's own random key, made on first start and kept
    in `path` (var/ is git-ignored). A shared, published default would let anyone sign visitor
    cookies and compute logged-in users' visitor ids (tailored.E008 refuses it outside DEBUG)."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(secrets.token_urlsafe(50))  # readable by this user only
        try:
            os.link(draft, path)  # atomic and exclusive: processes starting together keep the first key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


SECRET_KEY = installation_secret_key(BASE_DIR / "var" / "secret_key")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")

INSTALLED_APPS = [
    "cms",
    "tailored.frontend",
    "tailored.blocks",
    "tailored",
    "tailored.experiments",
    "grapple",
    "graphene_django",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tailored.middleware.VisitorMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "cms.urls"

TEMPLATES = [
    {
        # Site pages and blocks render with Jinja2 (fast, and what the SSR path is built on).
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "APP_DIRS": True,
        "OPTIONS": {
            "environment": "tailored.frontend.jinja2env.environment",
            "extensions": [
                "wagtail.jinja2tags.core",
                "wagtail.admin.jinja2tags.userbar",
                "wagtail.images.jinja2tags.images",
                "tailored.frontend.jinja2tags.TailoredExtension",  # tailored_head(), tailored_body()
            ],
        },
    },
    {
        # The Wagtail and Django admin keep Django templates.
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "cms.wsgi.application"


def database_from_url(url: str) -> dict:
    """Translate a postgres:// URL into Django's DATABASES entry (no extra dependency)."""
    parts = urlparse(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgres:// URL, got scheme {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "tailored",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "var" / "media"

WAGTAIL_SITE_NAME = "Tailored demo shop"
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "http://127.0.0.1:8000")
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}

GRAPHENE = {"SCHEMA": "grapple.schema.schema"}
GRAPPLE = {"APPS": {"cms": ""}, "EXPOSE_GRAPHIQL": True, "ADD_SEARCH_HIT": False}

PERSONALIZATION = {
    "PRODUCT_MODEL": "cms.ProductPage",
    "REDIS_URL": os.environ.get("REDIS_URL") or None,
    "PROFILE_STORE": (
        "tailored.profiles.redis.RedisProfileStore"
        if os.environ.get("REDIS_URL")
        else "tailored.profiles.memory.MemoryProfileStore"
    ),
    # Redis Cluster (README "Redis Cluster"): REDIS_URL=redis+cluster://host:port,... and the
    # number of event stream shards.
    "EVENT_STREAM_SHARDS": int(os.environ.get("EVENT_STREAM_SHARDS") or 1),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"tailored": {"handlers": ["console"], "level": "INFO"}},
}
