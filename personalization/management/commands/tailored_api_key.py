"""`manage.py tailored_api_key`: the API keys headless frontends' servers send as X-Tailored-Key.

    tailored_api_key create NAME     print a new key (shown once: only its SHA-256 is stored)
    tailored_api_key list            name, prefix, created, last used, active
    tailored_api_key revoke PREFIX   deactivate the key(s) starting with PREFIX (or --id ID)
"""

from __future__ import annotations

import unicodedata

from django.core.management.base import BaseCommand, CommandError

from tailored.management.database import needs_migrated_database
from tailored.models import ApiKey
from tailored.server_visitors import create_api_key, revoke_api_keys


class Command(BaseCommand):
    help = "Create, list and revoke the API keys of server-to-server visitors (X-Tailored-Key)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a key and print it once.")
        create.add_argument("name", help="Which frontend or server will use the key.")
        actions.add_parser("list", help="List keys (never the keys themselves).")
        revoke = actions.add_parser("revoke", help="Deactivate a key.")
        revoke.add_argument("prefix", nargs="?", help="The key's first characters, as `list` shows them.")
        revoke.add_argument("--id", type=int, help="The key's id instead of its prefix.")

    @needs_migrated_database
    def handle(self, *args, action: str, **options):
        getattr(self, f"handle_{action}")(**options)

    def handle_create(self, name: str, **options) -> None:
        name = checked_name(name)
        key, raw = create_api_key(name)
        self.stdout.write(f"Created API key {key.pk} ({key.name}). Copy it now; it is not shown again:")
        self.stdout.write(raw)

    def handle_list(self, **options) -> None:
        for key in ApiKey.objects.order_by("created_at"):
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
            state = "active" if key.active else "revoked"
            self.stdout.write(
                f"{key.pk}\t{key.prefix}\t{state}\tcreated {key.created_at.isoformat(timespec='seconds')}\t"
                f"last used {used}\t{key.name}"
            )

    def handle_revoke(self, prefix: str | None = None, id: int | None = None, **options) -> None:
        if id is not None:
            keys = ApiKey.objects.filter(pk=id)
        elif prefix:
            # The stored prefix is 8 characters; a full key given by mistake still finds its row.
            keys = ApiKey.objects.filter(prefix__startswith=prefix[:8])
        else:
            raise CommandError("Give the key's prefix or --id.")
        found = list(keys.values_list("pk", flat=True))
        if not found:
            raise CommandError("No API key matches.")
        if len(found) > 1:
            raise CommandError(f"{len(found)} keys match; give a longer prefix or --id.")
        revoke_api_keys(ApiKey.objects.filter(pk=found[0]))
        self.stdout.write(f"Revoked API key {found[0]}.")


def checked_name(name: str) -> str:
    """The name without surrounding spaces (as the admin's form keeps it); a blank one, one longer
    than the column or one with a control character (NUL, which PostgreSQL refuses; a tab, which
    `list` separates columns with) is refused in one line, and nothing is stored."""
    name = name.strip()
    limit = ApiKey._meta.get_field("name").max_length
    if not name:
        raise CommandError("The name is blank: say which frontend or server will use the key.")
    if len(name) > limit:
        raise CommandError(f"The name is {len(name)} characters long; the limit is {limit}.")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise CommandError("The name holds a control character (such as NUL or a tab): use printable text.")
    return name
