"""Content blocks editors compose pages from. Each sets icon, template, preview_value and
description so the block picker shows a preview. `ContentStreamBlock` is the whole library: what
a page section, a variant and a fallback may contain."""

from wagtail import blocks

from tailored.products import product_model_label

from .choices import StaticChoiceBlock
from .commerce import OfferBannerBlock, ProductCarouselBlock, RecommendationBlock
from .engagement import OnboardingSurveyBlock, PersonalizedMessageBlock
from .links import LinkBlock, SafeLinksMixin
from .media import ImageWithTextBlock


class HeroBlock(SafeLinksMixin, blocks.StructBlock):
    heading = blocks.CharBlock(max_length=120)
    subheading = blocks.TextBlock(required=False, max_length=400)
    cta_label = blocks.CharBlock(required=False, max_length=40, label="Button label")
    cta_url = LinkBlock(
        required=False, max_length=300, label="Button link", help_text="A path such as /electronics/ or a full URL."
    )

    class Meta:
        icon = "title"
        template = "tailored/blocks/hero.html"
        group = "Content"
        description = "A large banner with a heading, a line of text and a call to action."
        preview_value = {
            "heading": "New season, new gear",
            "subheading": "Hand-picked products for the way you live.",
            "cta_label": "Shop now",
            "cta_url": "/",
        }


class RichTextBlock(blocks.RichTextBlock):
    class Meta:
        icon = "pilcrow"
        template = "tailored/blocks/rich_text.html"
        group = "Content"
        description = "Formatted text with headings, links and lists."
        preview_value = "<h2>About us</h2><p>We pick products we would buy ourselves.</p>"


class CTABlock(SafeLinksMixin, blocks.StructBlock):
    text = blocks.CharBlock(max_length=160)
    button_label = blocks.CharBlock(max_length=40)
    url = LinkBlock(max_length=300)
    style = StaticChoiceBlock(choices=[("primary", "Primary"), ("secondary", "Secondary")], default="primary")

    class Meta:
        icon = "link"
        template = "tailored/blocks/cta.html"
        group = "Content"
        description = "A sentence and a button that leads somewhere."
        preview_value = {"text": "Free delivery on orders over 50.", "button_label": "See offers", "url": "/", "style": "primary"}


# Offered only on sites that name a product model.
PRODUCT_BLOCKS = ("product_carousel", "recommendations", "survey")


class ContentStreamBlock(blocks.StreamBlock):
    """What a variant (or a fallback) may contain."""

    hero = HeroBlock()
    rich_text = RichTextBlock()
    cta = CTABlock(label="Call to action")
    image_text = ImageWithTextBlock(label="Image with text")
    offer = OfferBannerBlock(label="Offer banner")
    product_carousel = ProductCarouselBlock()
    recommendations = RecommendationBlock()
    message = PersonalizedMessageBlock(label="Personalized message")
    survey = OnboardingSurveyBlock(label="Onboarding survey")

    def __init__(self, local_blocks=None, **kwargs):
        super().__init__(local_blocks, **kwargs)
        # Product blocks need the site's product model (PERSONALIZATION["PRODUCT_MODEL"]).
        if product_model_label() is None:
            for name in PRODUCT_BLOCKS:
                self.child_blocks.pop(name, None)

    def bulk_to_python(self, values):
        # Lazy, like `to_python`: a variant's (or fallback's, or arm's) content is decoded, and its
        # products, pages and images looked up, only when something reads it: when it is shown,
        # edited, previewed or listed. Wagtail's eager default decoded every variant of every
        # PersonalizedBlock on every request, so a page cost more with each variant it held.
        return [self.to_python(value) for value in values]

    class Meta:
        icon = "doc-full"
