"""The demo shop's page types. Pages hold content; personalization lives in their blocks."""

from __future__ import annotations

from django.db import models
from grapple.models import (
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
from wagtail import blocks as wagtail_blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page
from wagtail.search import index

from blocks.content import CTABlock, HeroBlock, RichTextBlock
from blocks.personalized import PersonalizedBlock


class HomeStreamBlock(wagtail_blocks.StreamBlock):
    hero = HeroBlock()
    rich_text = RichTextBlock()
    cta = CTABlock()
    personalized = PersonalizedBlock()


class HomePage(Page):
    body = StreamField(HomeStreamBlock(), blank=True)

    content_panels = [*Page.content_panels, FieldPanel("body")]
    graphql_fields = [GraphQLStreamfield("body")]
    subpage_types = ["cms.CategoryPage"]
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
        context["products"] = ProductPage.objects.live().filter(category=self).order_by("title")
        return context


class ProductPageTag(TaggedItemBase):
    content_object = ParentalKey("cms.ProductPage", related_name="tagged_items", on_delete=models.CASCADE)


class ProductPage(Page):
    category = models.ForeignKey(CategoryPage, on_delete=models.PROTECT, related_name="+")
    tags = ClusterTaggableManager(through=ProductPageTag, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    description = models.TextField()
    image = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    content_panels = [
        *Page.content_panels,
        FieldPanel("category"),
        FieldPanel("price"),
        FieldPanel("description"),
        FieldPanel("tags"),
        FieldPanel("image"),
    ]
    search_fields = [*Page.search_fields, index.SearchField("description")]
    graphql_fields = [
        GraphQLForeignKey("category", "cms.CategoryPage"),
        GraphQLFloat("price"),
        GraphQLString("description"),
        GraphQLTag("tags"),
        GraphQLImage("image"),
    ]
    parent_page_types = ["cms.CategoryPage"]
    subpage_types: list[str] = []
