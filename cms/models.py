"""The demo shop's page types. Pages hold content; personalization lives in their blocks.

Pages with sections (home, landing, article) use the plugin's `PersonalizedPageMixin`, exactly as
a site owner would: preview as an audience and the Experiments tab.
"""

from __future__ import annotations

from django.db import models
from grapple.models import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLForeignKey,
    GraphQLImage,
    GraphQLStreamfield,
    GraphQLString,
    GraphQLTag,
)
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey
from taggit.models import TaggedItemBase
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page
from wagtail.search import index

from tailored.blocks.content import ContentStreamBlock
from tailored.blocks.experiments import ExperimentBlock
from tailored.blocks.personalized import PersonalizedBlock
from tailored.frontend.pages import PersonalizedPageMixin


class SectionStreamBlock(ContentStreamBlock):
    """A page's sections: every content block, and PersonalizedBlock around any of them."""

    personalized = PersonalizedBlock()
    experiment = ExperimentBlock()


class HomePage(PersonalizedPageMixin, Page):
    body = StreamField(SectionStreamBlock(), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("body")]
    graphql_fields = [GraphQLStreamfield("body")]
    subpage_types = ["cms.CategoryPage", "cms.LandingPage", "cms.ArticleIndexPage"]
    max_count = 1

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["categories"] = CategoryPage.objects.child_of(self).live().order_by("title")
        return context


class CategoryPage(Page):
    intro = models.TextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    graphql_fields = [GraphQLString("intro")]
    parent_page_types = ["cms.HomePage"]
    subpage_types = ["cms.ProductPage"]

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        products = ProductPage.objects.live().filter(category=self).select_related("image")
        # Renditions prefetched: the grid's images cost one query, not one per product.
        context["products"] = products.prefetch_related("image__renditions").order_by("title")
        return context


class ProductPageTag(TaggedItemBase):
    content_object = ParentalKey("cms.ProductPage", related_name="tagged_items", on_delete=models.CASCADE)


class ProductPage(Page):
    category = models.ForeignKey(CategoryPage, on_delete=models.PROTECT, related_name="+")
    tags = ClusterTaggableManager(through=ProductPageTag, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    in_stock = models.BooleanField(default=True, help_text="Out-of-stock products are never recommended.")
    description = models.TextField()
    image = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    content_panels = [
        *Page.content_panels,
        FieldPanel("category"),
        FieldPanel("price"),
        FieldPanel("in_stock"),
        FieldPanel("description"),
        FieldPanel("tags"),
        FieldPanel("image"),
    ]
    search_fields = [*Page.search_fields, index.SearchField("description")]
    graphql_fields = [
        GraphQLForeignKey("category", "cms.CategoryPage"),
        GraphQLFloat("price"),
        GraphQLBoolean("in_stock"),
        GraphQLString("description"),
        GraphQLTag("tags"),
        GraphQLImage("image"),
    ]
    parent_page_types = ["cms.CategoryPage"]
    subpage_types: list[str] = []


class LandingPage(PersonalizedPageMixin, Page):
    """A campaign page: its sections' variants usually target a place, a time or a campaign."""

    intro = models.TextField(blank=True, help_text="A line for search results and link previews.")
    body = StreamField(SectionStreamBlock(), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro"), FieldPanel("body")]
    search_fields = [*Page.search_fields, index.SearchField("intro")]
    graphql_fields = [GraphQLString("intro"), GraphQLStreamfield("body")]
    parent_page_types = ["cms.HomePage"]
    subpage_types: list[str] = []


class ArticleIndexPage(Page):
    intro = models.TextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    graphql_fields = [GraphQLString("intro")]
    parent_page_types = ["cms.HomePage"]
    subpage_types = ["cms.ArticlePage"]
    max_count = 1

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        articles = ArticlePage.objects.child_of(self).live().select_related("category")
        context["articles"] = articles.order_by("-first_published_at", "title")
        return context


class ArticlePage(PersonalizedPageMixin, Page):
    """Editorial content; its page views mark visitors as content explorers."""

    intro = models.TextField()
    category = models.ForeignKey(
        CategoryPage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The department the article is about (tracked with its page views).",
    )
    body = StreamField(SectionStreamBlock(), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro"), FieldPanel("category"), FieldPanel("body")]
    search_fields = [*Page.search_fields, index.SearchField("intro"), index.SearchField("body")]
    graphql_fields = [
        GraphQLString("intro"),
        GraphQLForeignKey("category", "cms.CategoryPage"),
        GraphQLStreamfield("body"),
    ]
    parent_page_types = ["cms.ArticleIndexPage"]
    subpage_types: list[str] = []
