"""Load the demo shop: segments, a homepage with personalized sections, 6 categories and their
products, and a demo editor. Idempotent: what exists is left alone (editors' changes included)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand
from django.db import transaction
from wagtail.coreutils import get_supported_content_language_variant
from wagtail.models import Locale, Page, Site

from cms.models import CategoryPage, HomePage, ProductPage
from personalization.models import Segment

DEMO_DIR = Path(settings.BASE_DIR) / "fixtures" / "demo"
EDITOR_USERNAME = "editor"
EDITOR_PASSWORD = "tailored-demo"


def _read(name: str) -> dict:
    return json.loads((DEMO_DIR / name).read_text())


def _tree_root() -> Page:
    """Wagtail's root page, recreated (with the default locale) on a database that was flushed."""
    root = Page.get_first_root_node()
    if root is not None:
        return root
    Locale.objects.get_or_create(language_code=get_supported_content_language_variant(settings.LANGUAGE_CODE))
    return Page.add_root(instance=Page(title="Root", slug="root", content_type=ContentType.objects.get_for_model(Page)))


class Command(BaseCommand):
    help = "Load the demo shop (safe to run again: nothing that exists is changed)."

    @transaction.atomic
    def handle(self, *args, **options):
        created = self._segments()
        self.stdout.write(f"segments: {created} created")
        home = self._home()
        categories = products = 0
        for category_data in _read("catalog.json")["categories"]:
            category, was_new = self._category(home, category_data)
            categories += was_new
            products += sum(self._product(category, p) for p in category_data["products"])
        self.stdout.write(f"pages: {categories} categories and {products} products created")
        self._editor()
        self.stdout.write(self.style.SUCCESS("demo content ready"))

    def _segments(self) -> int:
        created = 0
        for data in _read("segments.json")["segments"]:
            _, was_new = Segment.objects.get_or_create(slug=data["slug"], defaults=data)
            created += was_new
        return created

    def _home(self) -> HomePage:
        home = HomePage.objects.first()
        if home is not None:
            return home
        root = _tree_root()
        # Wagtail's initial "Welcome" page holds the slug "home"; the demo homepage replaces it.
        placeholders = list(root.get_children().exclude(content_type__model="homepage"))
        for page in placeholders:
            page.slug = f"{page.slug}-placeholder-{page.pk}"
            page.save()
        data = _read("home.json")
        home = root.add_child(instance=HomePage(title=data["title"], slug="home", body=data["body"]))
        home.save_revision().publish()
        site = Site.objects.filter(is_default_site=True).first()
        if site is None:
            Site.objects.create(hostname="localhost", root_page=home, is_default_site=True, site_name="Tailored shop")
        else:
            site.root_page = home
            site.save()
        for page in placeholders:
            page.delete()
        self.stdout.write("homepage created")
        return home

    def _category(self, home: HomePage, data: dict) -> tuple[CategoryPage, bool]:
        existing = CategoryPage.objects.child_of(home).filter(slug=data["slug"]).first()
        if existing is not None:
            return existing, False
        category = CategoryPage(title=data["title"], slug=data["slug"], intro=data["intro"])
        home.add_child(instance=category)
        category.save_revision().publish()
        return category, True

    def _product(self, category: CategoryPage, data: dict) -> bool:
        if ProductPage.objects.child_of(category).filter(title=data["title"]).exists():
            return False
        product = ProductPage(
            title=data["title"],
            category=category,
            price=Decimal(data["price"]),
            description=data["description"],
        )
        category.add_child(instance=product)
        product.tags.set(data["tags"])
        product.save_revision().publish()
        return True

    def _editor(self) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username=EDITOR_USERNAME).exists():
            user_model.objects.create_superuser(EDITOR_USERNAME, "editor@example.com", EDITOR_PASSWORD)
            self.stdout.write(f"editor created: {EDITOR_USERNAME} / {EDITOR_PASSWORD}")
