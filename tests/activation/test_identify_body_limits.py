"""POST /api/identify reads its Content-Length before its body: a body past Django's
DATA_UPLOAD_MAX_MEMORY_SIZE is the documented JSON 413 (not Django's HTML 400), and a header that
is not a number a JSON 400 (not a 500). /api/events reads the header with the same helper
(tailored.views.declared_length) and answers such a header the same way."""

from __future__ import annotations

import json
import time

import pytest

from tailored import conf
from tailored.activation.models import KnownVisitor
from tailored.events.stream import STREAM_KEY
from tests.helpers import consent_cookies, signed_visitor_id

pytestmark = pytest.mark.django_db
VISITOR = "d" * 32
NOT_NUMBERS = ["abc", "1e3", "-1", "+12", "1_000", "\u0661\u0662", " "]


def identify(client, data: bytes, **headers):
    client.cookies["tl_consent"] = "analytics.personalization.marketing"
    client.cookies["tl_vid"] = signed_visitor_id(VISITOR)
    client.raise_request_exception = True
    return client.post("/api/identify", data=data, content_type="application/json", **headers)


@pytest.mark.parametrize("size", [3 * 1024 * 1024, 2049])  # past Django's 2.5 MB; just past the view's 2 KB
def test_a_body_past_the_limit_is_the_json_413_however_large(client, memory_store, size):
    body = json.dumps({"email": "a" * size + "@example.com"}).encode()

    response = identify(client, body)

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "too_large", "message": "the body must be at most 2048 bytes"}
    assert not KnownVisitor.objects.exists()


@pytest.mark.parametrize("length", NOT_NUMBERS)
def test_identify_with_a_content_length_that_is_not_a_number_is_a_json_400(client, memory_store, length):
    response = identify(client, b'{"email": "ada@example.com"}', CONTENT_LENGTH=length)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_content_length",
        "message": f"the Content-Length header is not a number of bytes: {length!r}",
    }
    assert not KnownVisitor.objects.exists()


def test_identify_still_works_with_a_true_content_length(client, memory_store):
    body = b'{"email": "ada@example.com"}'
    response = identify(client, body, CONTENT_LENGTH=str(len(body)))
    assert (response.status_code, response.json()) == (200, {"identified": True, "email_kept": True})


@pytest.mark.parametrize("length", NOT_NUMBERS)
def test_events_with_a_content_length_that_is_not_a_number_is_a_json_400(client, use_redis_store, redis_client, length):
    consent_cookies(client, VISITOR)
    client.raise_request_exception = True
    batch = json.dumps({"events": [{"type": "page_view", "id": "cl1", "ts": int(time.time() * 1000)}]}).encode()

    response = client.generic("POST", "/api/events", batch, content_type="application/json", CONTENT_LENGTH=length)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_content_length",
        "message": f"the Content-Length header is not a number of bytes: {length!r}",
    }
    assert redis_client.xlen(STREAM_KEY) == 0
    assert conf.get_profile_store().get(VISITOR, time.time()).page_views == 0
