"""Shared fixtures. Redis tests use a real redis-server that pytest-redis starts for the session."""

from __future__ import annotations

import io
import os
import tempfile

import pytest
import redis
from django.core.management import call_command
from django.test import Client

from tailored.profiles.memory import MemoryProfileStore
from tailored.profiles.redis import RedisProfileStore

# Trained models of a developer's `make demo` (var/models) must not change what tests see.
TEST_MODEL_DIR = os.path.join(tempfile.gettempdir(), f"tailored-test-models-{os.getpid()}")

DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
MOBILE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def _is_e2e(item) -> bool:
    return "tests/e2e/" in item.path.as_posix()


def pytest_collection_modifyitems(config, items):
    # Browser journeys are marked `e2e` and run last: they use transactional databases that flush
    # at teardown, and the demo content loaded once for the session serves every other test.
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=_is_e2e)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The demo shop, loaded once: what every database test starts from."""
    with django_db_blocker.unblock():
        call_command("load_demo", stdout=io.StringIO())


@pytest.fixture
def client():
    """A test client that presents itself as a desktop browser (an empty User-Agent is a bot)."""
    return Client(HTTP_USER_AGENT=DESKTOP_UA)


@pytest.fixture
def editor(client, django_user_model):
    """The test client, logged in as the demo's editor (a superuser)."""
    client.force_login(django_user_model.objects.get(username="editor"))
    return client


@pytest.fixture
def redis_client(redis_proc):
    client = redis.Redis(host=redis_proc.host, port=redis_proc.port, decode_responses=True)
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def redis_url(redis_proc, redis_client):
    return f"redis://{redis_proc.host}:{redis_proc.port}/0"


@pytest.fixture(params=["memory", "redis"])
def store(request):
    """Each ProfileStore backend; contract tests run against both."""
    if request.param == "memory":
        return MemoryProfileStore(retention_seconds=90 * 86400)
    client = request.getfixturevalue("redis_client")
    return RedisProfileStore(client, retention_seconds=90 * 86400)


# What the demo site's settings name and every store fixture keeps: the demo's product model, and
# loopback for the activation destinations tests start (cms.settings.test; tailored.outbound).
DEMO_SETTINGS = {"PRODUCT_MODEL": "cms.ProductPage", "DESTINATION_PRIVATE_NETWORKS": ["127.0.0.0/8", "::1/128"]}


@pytest.fixture
def personalization(settings):
    """Set PERSONALIZATION keys for one test, over the store and settings it already uses."""

    def update(**values):
        settings.PERSONALIZATION = {**settings.PERSONALIZATION, **values}

    return update


@pytest.fixture(autouse=True)
def _empty_page_cache():
    """Page ids and revisions repeat across tests (each rolls back): no page cached by one test
    may be served to the next from the process's LRU."""
    from tailored import fragments
    from tailored.blocks import page_cache

    page_cache.forget_local()
    fragments.CACHE.forget_local()  # likewise the fragments a process keeps from Redis


@pytest.fixture(autouse=True)
def _empty_site_cache():
    """Likewise the Sites a test's requests found: its rolled-back edits must not answer the next."""
    from tailored.site_cache import site_cache

    site_cache.clear()


@pytest.fixture
def use_redis_store(settings, redis_url):
    """Point the site at the session's real Redis."""
    settings.PERSONALIZATION = {
        **DEMO_SETTINGS,
        "PROFILE_STORE": "tailored.profiles.redis.RedisProfileStore",
        "REDIS_URL": redis_url,
        "MODEL_DIR": TEST_MODEL_DIR,
    }
    return redis_url


@pytest.fixture
def memory_store(settings):
    """A fresh in-process store for this test."""
    settings.PERSONALIZATION = {**DEMO_SETTINGS, "PROFILE_STORE": "tailored.profiles.memory.MemoryProfileStore", "MODEL_DIR": TEST_MODEL_DIR}
    from tailored import conf

    return conf.get_profile_store()
