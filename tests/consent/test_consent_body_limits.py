"""The consent endpoint answers a body it cannot take in its own words (JSON for tracker.js, text
for the banner's form) and records nothing: not Django's HTML 400, nor a 500 for a
Content-Length that is not a number."""

from __future__ import annotations

import json

import pytest

from .conftest import visitor_id_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def test_a_json_answer_past_the_limit_is_a_json_413(client):
    body = json.dumps({"analytics": True, "personalization": True, "pad": "x" * 3_000_000})
    response = client.post("/consent/", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "tl_consent" not in response.cookies and visitor_id_of(client) is None


def test_a_form_past_the_limit_is_a_text_413(client):
    response = client.post("/consent/", {"choice": "accept", "pad": "x" * 3_000_000})
    assert (response.status_code, response["Content-Type"]) == (413, "text/plain")
    assert "tl_consent" not in response.cookies


def test_a_form_of_too_many_fields_is_a_text_400(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = client.post("/consent/", {"choice": "accept", **{f"f{i}": "1" for i in range(20)}})
    assert (response.status_code, response["Content-Type"]) == (400, "text/plain")
    assert response.content.decode().startswith("the form is not one this page sends")
    assert "tl_consent" not in response.cookies


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("length", ["abc", "1e3", "-1"])
def test_a_content_length_that_is_not_a_number_is_a_400(client, content_type, length):
    body = '{"analytics": true}' if content_type == "application/json" else "choice=accept"
    response = client.generic("POST", "/consent/", body, content_type=content_type, CONTENT_LENGTH=length)
    assert response.status_code == 400
    text = response.json()["message"] if content_type == "application/json" else response.content.decode()
    assert text.startswith("the Content-Length header is not a number of bytes")
    assert "tl_consent" not in response.cookies
