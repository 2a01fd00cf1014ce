"""Load the demo shop: segments, images, a homepage of personalized sections, 6 categories and
their products, 3 landing pages, a few articles and a demo editor.

Idempotent: what exists is left alone (editors' changes included); what is missing is created.
An existing homepage gets the demo sections it has never had (appended in a new published
revision, unless it has unpublished changes), so older databases catch up with new demo content.

Block content lives in fixtures/demo/*.json as Wagtail's raw StreamField JSON; references are
written as {"$category": slug}, {"$product": title} or {"$image": name} and resolved here.
"""

from __future__ import annotations

import json
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.files.images import ImageFile
from django.core.management.base import BaseCommand
from django.db import transaction
from PIL import Image as PILImage
from PIL import ImageDraw
from wagtail.coreutils import get_supported_content_language_variant
from wagtail.images import get_image_model
from wagtail.models import Collection, Locale, Page, Site

from cms.models import (
    ArticleIndexPage,
    ArticlePage,
    CategoryPage,
    HomePage,
    LandingPage,
    ProductPage,
)
from tailored.experiments.models import Experiment, ExperimentArm
from tailored.models import Segment
from tailored.progress import Progress

DEMO_DIR = Path(settings.BASE_DIR) / "fixtures" / "demo"
EDITOR_USERNAME = "editor"
EDITOR_PASSWORD = "tailored-demo"
# Generated at load time (deterministic, a few KB each): the repository ships no binaries.
DEMO_IMAGES = {
    "electronics": ("#1f3b57", "#4f8fc0"),
    "home-kitchen": ("#7a4b2a", "#e0b07a"),
    "outdoors": ("#1e4d2b", "#8cc084"),
    "books": ("#4a2c4f", "#c29bc8"),
    "fashion": ("#5a1f2b", "#e08a9a"),
    "beauty": ("#6b5a2a", "#f0dca0"),
    "workshop": ("#2b2f36", "#9aa5b1"),
}


def _read(name: str) -> dict:
    return json.loads((DEMO_DIR / name).read_text())


def _tree_root() -> Page:
    """Wagtail's root page, recreated (with the default locale) on a database that was flushed."""
    root = Page.get_first_root_node()
    if root is not None:
        return root
    Locale.objects.get_or_create(language_code=get_supported_content_language_variant(settings.LANGUAGE_CODE))
    return Page.add_root(instance=Page(title="Root", slug="root", content_type=ContentType.objects.get_for_model(Page)))


def demo_png(start: str, end: str, size: tuple[int, int] = (640, 480)) -> bytes:
    """A vertical gradient with a soft disc: the same bytes every time for the same colours."""
    width, height = size
    image = PILImage.new("RGB", size, start)
    draw = ImageDraw.Draw(image)
    a, b = PILImage.new("RGB", (1, 1), start).getpixel((0, 0)), PILImage.new("RGB", (1, 1), end).getpixel((0, 0))
    for y in range(height):
        t = y / (height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(round(a[i] + (b[i] - a[i]) * t) for i in range(3)))
    draw.ellipse([width * 0.58, height * 0.18, width * 0.88, height * 0.58], fill=end)
    out = BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


class Resolver:
    """Replaces {"$category": slug}, {"$product": title} and {"$image": name} with ids."""

    def __init__(self, images: dict[str, Any]):
        self.images = images
        self.categories = dict(CategoryPage.objects.values_list("slug", "pk"))
        self.products = dict(ProductPage.objects.values_list("title", "pk"))

    def __call__(self, data: Any) -> Any:
        if isinstance(data, list):
            return [self(item) for item in data]
        if not isinstance(data, dict):
            return data
        if len(data) == 1:
            (key, name), = data.items()
            table = {"$category": self.categories, "$product": self.products, "$image": self.images}.get(key)
            if table is not None:
                found = table.get(name)
                return getattr(found, "pk", found)
        return {key: self(value) for key, value in data.items()}


# Every demo article ends with other articles for its reader (issue 22 item 6): the recommender
# scores the article being read with the visitor's history, never offering the article itself.
MORE_ARTICLES = {
    "type": "recommendations",
    "value": {"heading": "More to read", "item_type": "article", "strategy": "recommended", "count": 3, "ask_feedback": False},
}


class Command(BaseCommand):
    help = "Load the demo shop (safe to run again: nothing that exists is changed)."

    @transaction.atomic
    def handle(self, *args, **options):
        created = self._segments()
        self.stdout.write(f"segments: {created} created")
        images = self._images()
        home = self._home()
        self._catalog(home, images)
        resolve = Resolver(images)
        self._home_sections(home, resolve)
        self._landing_pages(home, resolve)
        self._articles(home, resolve)
        self._experiments(resolve)
        self._editor()
        self.stdout.write(self.style.SUCCESS("demo content ready"))

    def _catalog(self, home: HomePage, images: dict[str, Any]) -> None:
        """The category and product pages, with progress (each product page is a published
        revision: the slowest part of a first load)."""
        catalog = _read("catalog.json")["categories"]
        progress = Progress("product pages", sum(len(c["products"]) for c in catalog), self.stdout.write)
        categories = products = done = 0
        for category_data in catalog:
            category, was_new = self._category(home, category_data)
            categories += was_new
            image = images.get(category.slug)
            for product_data in category_data["products"]:
                products += self._product(category, product_data, image)
                done += 1
                progress(done)
        self.stdout.write(f"pages: {categories} categories and {products} products created")

    def _segments(self) -> int:
        created = 0
        for data in _read("segments.json")["segments"]:
            _, was_new = Segment.objects.get_or_create(slug=data["slug"], defaults=data)
            created += was_new
        return created

    def _images(self) -> dict[str, Any]:
        """The demo images by name, created when missing (found again by title)."""
        if Collection.get_first_root_node() is None:  # a flushed database
            Collection.add_root(name="Root")
        model = get_image_model()
        images, created = {}, 0
        for name, (start, end) in DEMO_IMAGES.items():
            title = f"Demo: {name}"
            image = model.objects.filter(title=title).first()
            if image is None:
                image = model(title=title, file=ImageFile(BytesIO(demo_png(start, end)), name=f"demo-{name}.png"))
                image.save()
                created += 1
            images[name] = image
        self.stdout.write(f"images: {created} created")
        return images

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
        # Sections that refer to categories or products are added once those exist (_home_sections).
        home = root.add_child(instance=HomePage(title=data["title"], slug="home", body=[]))
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

    def _home_sections(self, home: HomePage, resolve: Resolver) -> None:
        """Add the demo sections the homepage has never had, each after its predecessor in the
        fixture. A section an editor deleted (present in an older revision) is not brought back."""
        ever = _section_ids(home)
        body = list(home.body.raw_data)
        ids = [section["id"] for section in body]
        added = 0
        previous = None
        for section in _read("home.json")["body"]:
            if section["id"] not in ever and section["id"] not in ids:
                at = ids.index(previous) + 1 if previous in ids else len(ids) if previous else 0
                body.insert(at, resolve(section))
                ids.insert(at, section["id"])
                added += 1
            previous = section["id"]
        if not added:
            return
        if home.has_unpublished_changes:
            self.stdout.write(self.style.WARNING(f"homepage: {added} demo sections not added (it has a draft)"))
            return
        home.body = body
        home.save_revision().publish()
        self.stdout.write(f"homepage: {added} sections added")

    def _category(self, home: HomePage, data: dict) -> tuple[CategoryPage, bool]:
        existing = CategoryPage.objects.child_of(home).filter(slug=data["slug"]).first()
        if existing is not None:
            return existing, False
        category = CategoryPage(title=data["title"], slug=data["slug"], intro=data["intro"])
        home.add_child(instance=category)
        category.save_revision().publish()
        return category, True

    def _product(self, category: CategoryPage, data: dict, image) -> bool:
        if ProductPage.objects.child_of(category).filter(title=data["title"]).exists():
            return False
        product = ProductPage(
            title=data["title"],
            category=category,
            price=Decimal(data["price"]),
            in_stock=data.get("in_stock", True),
            description=data["description"],
            image=image,
        )
        category.add_child(instance=product)
        product.tags.set(data["tags"])
        product.save_revision().publish()
        return True

    def _landing_pages(self, home: HomePage, resolve: Resolver) -> None:
        created = 0
        for data in _read("landing.json")["pages"]:
            if LandingPage.objects.child_of(home).filter(slug=data["slug"]).exists():
                continue
            page = LandingPage(title=data["title"], slug=data["slug"], intro=data["intro"], body=resolve(data["body"]))
            home.add_child(instance=page)
            page.save_revision().publish()
            created += 1
        self.stdout.write(f"landing pages: {created} created")

    def _articles(self, home: HomePage, resolve: Resolver) -> None:
        data = _read("articles.json")
        index = ArticleIndexPage.objects.child_of(home).first()
        if index is None:
            index = ArticleIndexPage(**data["index"])
            home.add_child(instance=index)
            index.save_revision().publish()
        created = 0
        categories = {c.slug: c for c in CategoryPage.objects.child_of(home)}
        for article in data["articles"]:
            if ArticlePage.objects.child_of(index).filter(slug=article["slug"]).exists():
                continue
            page = ArticlePage(
                title=article["title"],
                slug=article["slug"],
                intro=article["intro"],
                category=categories.get(article["category"]),
                body=[*resolve(article["body"]), MORE_ARTICLES],
            )
            index.add_child(instance=page)
            page.save_revision().publish()
            created += 1
        self.stdout.write(f"articles: {created} created")

    def _experiments(self, resolve: Resolver) -> None:
        """The demo A/B test (fixtures/demo/experiments.json): its article and the running
        experiment, each created once."""
        data = _read("experiments.json")
        index = ArticleIndexPage.objects.first()
        for article in data["articles"]:
            if index is not None and not ArticlePage.objects.child_of(index).filter(slug=article["slug"]).exists():
                page = ArticlePage(**{k: article[k] for k in ("title", "slug", "intro")}, body=resolve(article["body"]))
                index.add_child(instance=page)
                page.save_revision().publish()
        for spec in data["experiments"]:
            page = Page.objects.filter(slug=spec.pop("page")).first()
            if page is None or Experiment.objects.filter(key=spec["key"]).exists():
                continue
            arms = [ExperimentArm(**arm) for arm in spec.pop("arms")]
            Experiment(page=page, arms=arms, **spec).save()
            self.stdout.write(f"experiment created: {spec['key']}")

    def _editor(self) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username=EDITOR_USERNAME).exists():
            user_model.objects.create_superuser(EDITOR_USERNAME, "editor@example.com", EDITOR_PASSWORD)
            self.stdout.write(f"editor created: {EDITOR_USERNAME} / {EDITOR_PASSWORD}")


def _section_ids(home: HomePage) -> set[str]:
    """Ids of the top-level sections of every revision of the homepage."""
    ids = set()
    for content in home.revisions.values_list("content", flat=True):
        body = content.get("body") if isinstance(content, dict) else None
        if isinstance(body, str):
            body = json.loads(body or "[]")
        ids.update(section.get("id") for section in body or () if isinstance(section, dict))
    return ids
