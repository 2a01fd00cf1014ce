"""Content blocks editors compose pages from. Each sets icon, template, preview_value and
description so the block picker shows a preview."""

from wagtail import blocks


class HeroBlock(blocks.StructBlock):
    heading = blocks.CharBlock(max_length=120)
    subheading = blocks.TextBlock(required=False, max_length=400)
    cta_label = blocks.CharBlock(required=False, max_length=40)
    cta_url = blocks.CharBlock(required=False, max_length=300, help_text="A path such as /electronics/ or a full URL.")


    class Meta:
        icon = "image"
        template = "blocks/hero.html"
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
        template = "blocks/rich_text.html"
        description = "Formatted text with headings, links and lists."
        preview_value = "<h2>About us</h2><p>We pick products we would buy ourselves.</p>"


class CTABlock(blocks.StructBlock):
    text = blocks.CharBlock(max_length=160)
    button_label = blocks.CharBlock(max_length=40)
    url = blocks.CharBlock(max_length=300)
    style = blocks.ChoiceBlock(choices=[("primary", "Primary"), ("secondary", "Secondary")], default="primary")

    class Meta:
        icon = "link"
        template = "blocks/cta.html"
        description = "A sentence and a button that leads somewhere."
        preview_value = {"text": "Free delivery on orders over 50.", "button_label": "See offers", "url": "/", "style": "primary"}


class ContentStreamBlock(blocks.StreamBlock):
    """What a variant (or a fallback) may contain."""

    hero = HeroBlock()
    rich_text = RichTextBlock()
    cta = CTABlock()

    class Meta:
        icon = "doc-full"
