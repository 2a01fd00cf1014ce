"""Image with text: a picture beside a heading, a few lines of text and an optional link."""

from __future__ import annotations

from wagtail import blocks
from wagtail.images import get_image_model
from wagtail.images.blocks import ImageChooserBlock

from .choices import StaticChoiceBlock
from .links import LinkBlock, SafeLinksMixin


class ImageWithTextBlock(SafeLinksMixin, blocks.StructBlock):
    image = ImageChooserBlock()
    heading = blocks.CharBlock(max_length=120)
    body = blocks.RichTextBlock(features=["bold", "italic", "link", "ul"], required=False, label="Text")
    image_position = StaticChoiceBlock(
        choices=[("left", "Image on the left"), ("right", "Image on the right")], default="left"
    )
    link_label = blocks.CharBlock(required=False, max_length=40)
    url = LinkBlock(required=False, max_length=300)

    class Meta:
        icon = "image"
        template = "tailored/blocks/image_with_text.html"
        group = "Content"
        description = "A picture beside a heading, a few lines of text and a link."

    def get_preview_value(self):
        # The picker previews with whatever image the library has first (none on an empty site).
        return self.to_python(
            {
                "image": get_image_model().objects.order_by("pk").values_list("pk", flat=True).first(),
                "heading": "Made to last",
                "body": "<p>We test every product for a month before it reaches the shop.</p>",
                "image_position": "left",
                "link_label": "Read our story",
                "url": "/",
            }
        )

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        # An image without alt text gets alt="" (an <img> without alt fails accessibility checks);
        # decided here, so the Django and Jinja2 templates print it without logic of their own.
        image = value["image"]
        context["image_alt"] = (image.default_alt_text or "") if image else ""
        return context
