"""?explain=1 shows an editor which segments matched and why; nobody else sees it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tailored.services import user_visitor_id
from tests.helpers import consent_cookies, make_fan

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _store(memory_store):
    return memory_store


def segment_rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-tl-explain-segment="([^"]+)" data-matched="(true|false)"', html))


def test_an_editor_sees_each_segment_and_the_value_each_condition_saw(client):
    editor = get_user_model().objects.get(username="editor")
    client.force_login(editor)
    consent_cookies(client, "e" * 32)
    make_fan(user_visitor_id(editor.pk), views=2)  # logged in, the editor is known by their user's id
    html = client.get("/?explain=1").content.decode()
    rows = segment_rows(html)
    assert rows["electronics-fans"] == "false"
    assert rows["new-visitors"] == "true"
    assert "(saw: 2 times)" in html  # the electronics count the fans rule compared with 3


def test_visitors_and_plain_requests_get_no_panel(client):
    assert "tl-explain" not in client.get("/?explain=1").content.decode()
    client.force_login(get_user_model().objects.get(username="editor"))
    assert "tl-explain" not in client.get("/").content.decode()
