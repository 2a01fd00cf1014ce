"""The visitor id cookie is checked with signers built once per key set (issue 21 item 7): it
must accept and refuse exactly what Django's own `request.get_signed_cookie` does, for cookies
signed now, signed before Django's length-prefixed salt, forged, or signed with another key, and
follow a change of SECRET_KEY or of the legacy-salt setting at once."""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import RequestFactory

from tailored import conf
from tailored.services import VISITOR_COOKIE_SALT, VISITOR_ID, _cookie_visitor_id
from tests.helpers import signed_visitor_id

VID = "a" * 32


def django_says(value: str) -> str | None:
    """What Django's own check returns for this cookie value, with the id pattern applied."""
    request = RequestFactory().get("/")
    request.COOKIES[conf.get("VISITOR_COOKIE")] = value
    raw = request.get_signed_cookie(conf.get("VISITOR_COOKIE"), default=None, salt=VISITOR_COOKIE_SALT)
    return raw if raw and VISITOR_ID.match(raw) else None


def ours(value: str) -> str | None:
    request = RequestFactory().get("/")
    request.COOKIES[conf.get("VISITOR_COOKIE")] = value
    return _cookie_visitor_id(request)


def legacy_signed(visitor_id: str) -> str:
    """Signed with the salt Django used before the length-prefixed one (cookie name + salt)."""
    return signing.get_cookie_signer(salt=conf.get("VISITOR_COOKIE") + VISITOR_COOKIE_SALT).sign(visitor_id)


def cookies() -> dict[str, str]:
    current = signed_visitor_id(VID)
    return {
        "current": current,
        "legacy": legacy_signed(VID),
        "forged": VID,
        "tampered": current[:-2] + ("AA" if not current.endswith("AA") else "BB"),
        "empty": "",
        "not an id": signed_visitor_id("not-a-hex-id"),
    }


@pytest.mark.parametrize("legacy_fallback", [True, False])
def test_the_cookie_check_agrees_with_djangos(settings, legacy_fallback):
    settings.SIGNED_COOKIE_LEGACY_SALT_FALLBACK = legacy_fallback
    for name, value in cookies().items():
        assert ours(value) == django_says(value), name
    assert ours(signed_visitor_id(VID)) == VID


def test_a_new_secret_key_applies_at_once(settings):
    old = signed_visitor_id(VID)
    assert ours(old) == VID  # the signers for the old key are now cached
    settings.SECRET_KEY = "another-key-" + "z" * 50
    assert ours(old) is None and django_says(old) is None
    assert ours(signed_visitor_id(VID)) == VID
