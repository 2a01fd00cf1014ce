"""API keys in the Wagtail admin: the secret is shown once and only its hash is kept; revoking
takes effect at once."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tailored.models import ApiKey
from tailored.server_visitors import create_api_key, hash_key, verify_api_key

pytestmark = pytest.mark.django_db


def shown_secret(html: str) -> str:
    match = re.search(r'<code id="tailored-api-key"[^>]*>([^<]+)</code>', html)
    assert match, "the new key is shown on the page after creation"
    return match.group(1)


def test_creating_a_key_shows_the_secret_once_and_stores_only_its_hash(editor):
    response = editor.post(reverse("tailored_api_keys:add"), {"name": "Next.js storefront"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = shown_secret(response.content.decode())
    key = ApiKey.objects.get(name="Next.js storefront")
    assert key.hashed_key == hash_key(secret) and secret not in (key.hashed_key, key.prefix)
    assert verify_api_key(secret) == key.pk
    listing = editor.get(reverse("tailored_api_keys:index")).content.decode()
    assert "Next.js storefront" in listing and key.prefix in listing and secret not in listing
    assert secret not in editor.get(reverse("tailored_api_keys:edit", args=[key.pk])).content.decode()


def test_a_key_needs_a_name(editor):
    response = editor.post(reverse("tailored_api_keys:add"), {"name": ""})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoking_in_the_admin_refuses_the_key_at_once(editor):
    key, secret = create_api_key("Mobile app")
    assert verify_api_key(secret) == key.pk  # now cached by this process
    response = editor.post(reverse("tailored_api_keys:edit", args=[key.pk]), {"name": "Mobile app"})  # active unticked
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).active is False
    assert verify_api_key(secret) is None


def test_visitors_without_admin_access_cannot_see_keys(client, django_user_model):
    create_api_key("Storefront")
    client.force_login(django_user_model.objects.create_user("shopper", password="x"))
    response = client.get(reverse("tailored_api_keys:index"))
    assert response.status_code in (302, 403)
    assert b"Storefront" not in response.content
