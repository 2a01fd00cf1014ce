"""The visitor query: the same resolution as SSR; explanations for editors only."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tailored.services import user_visitor_id
from tests.conftest import MOBILE_UA
from tests.helpers import consent_cookies, make_fan

pytestmark = pytest.mark.django_db

VISITOR = (Path(__file__).parents[2] / "graphql" / "operations" / "visitor.graphql").read_text()


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def ask(client, **headers) -> dict:
    response = client.post("/graphql/", {"query": VISITOR}, content_type="application/json", **headers)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["visitor"]


def test_a_fan_is_told_their_segments_and_not_the_explanation(client):
    make_fan("f" * 32)
    consent_cookies(client, "f" * 32)
    visitor = ask(client, HTTP_USER_AGENT=MOBILE_UA)
    assert visitor["id"] is None  # a browser never reads its id (issue 14 item 7)
    assert {"electronics-fans", "mobile-visitors"} <= set(visitor["segments"])
    assert visitor["context"]["device"] == "mobile"
    assert visitor["consent"] == {"analytics": True, "personalization": True}
    assert visitor["explain"] is None


def test_without_consent_there_is_no_id_but_context_segments_apply(client):
    visitor = ask(client, HTTP_USER_AGENT=MOBILE_UA)
    assert visitor["id"] is None
    assert "mobile-visitors" in visitor["segments"]
    assert "electronics-fans" not in visitor["segments"]


def test_an_editor_gets_the_same_explanation_as_the_page(client):
    editor = get_user_model().objects.get(username="editor")
    client.force_login(editor)
    consent_cookies(client, "e" * 32)
    make_fan(user_visitor_id(editor.pk))
    explain = {row["segment"]: row for row in ask(client)["explain"]}
    assert explain["electronics-fans"]["matched"] is True
    assert explain["electronics-fans"]["explanation"]["saw"] == 3
    html = client.get("/?explain=1").content.decode()
    assert 'data-tl-explain-segment="electronics-fans" data-matched="true"' in html
