"""Blocks that speak to the visitor: a message with tokens filled from what we know about them,
and an onboarding survey that asks a visitor with no history for their favourite categories."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import NoReverseMatch, reverse
from wagtail import blocks

from tailored import caching
from tailored.core.types import Profile, Visitor
from tailored.products import category_model, product_model

from .commerce import CategoryChooserBlock
from .links import LinkBlock, SafeLinksMixin
from .visitors import request_of, visitor_of

TOKENS = ("first_name", "last_viewed_product", "favourite_category")
TOKEN = re.compile(r"\{(" + "|".join(TOKENS) + r")\}")
SURVEY_DONE_PARAM = "tl_survey"


def favourite_category_slug(profile: Profile) -> str | None:
    """The category the visitor viewed most (ties by name), else their first survey answer."""
    if profile.category_views:
        return max(profile.category_views.items(), key=lambda item: (item[1], item[0]))[0]
    return profile.preferences[0] if profile.preferences else None


def last_viewed_product_title(profile: Profile) -> str | None:
    """The title of the newest live product in the visitor's history (one query)."""
    ids = [int(item) for item, _ in profile.recent_items[:10] if item.isdigit()]
    if not ids:
        return None
    model = product_model()
    if model is None:
        return None
    titles = dict(model.objects.live().filter(pk__in=ids).values_list("pk", "title"))
    return next((titles[pk] for pk in ids if pk in titles), None)


def category_title(slug: str | None) -> str | None:
    if not slug:
        return None
    model = category_model()
    if model is None:
        return None
    return model.objects.live().filter(slug=slug).values_list("title", flat=True).first()


class PersonalizedMessageBlock(SafeLinksMixin, blocks.StructBlock):
    text = blocks.CharBlock(
        max_length=300,
        help_text="Tokens: {first_name}, {last_viewed_product}, {favourite_category}. Each is replaced by "
        "what we know about the visitor, or by its fallback below.",
    )
    first_name_fallback = blocks.CharBlock(default="there", required=False, max_length=60)
    last_viewed_product_fallback = blocks.CharBlock(default="something new", required=False, max_length=120)
    favourite_category_fallback = blocks.CharBlock(default="our shop", required=False, max_length=120)
    link_label = blocks.CharBlock(required=False, max_length=40)
    url = LinkBlock(required=False, max_length=300)

    class Meta:
        icon = "openquote"
        template = "tailored/blocks/personalized_message.html"
        group = "Personalization"
        description = "A sentence that greets the visitor by name or mentions what they last looked at."
        preview_value = {
            "text": "Hi {first_name}, still thinking about {last_viewed_product}?",
            "first_name_fallback": "there",
            "last_viewed_product_fallback": "something new",
            "favourite_category_fallback": "our shop",
            "link_label": "Take another look",
            "url": "/",
        }

    def token_values(self, text: str, request: HttpRequest | None, visitor: Visitor | None) -> dict[str, str | None]:
        """The known value of each token used in `text` (None when unknown); a query only for
        the tokens that are used and known."""
        used = set(TOKEN.findall(text))
        values: dict[str, str | None] = dict.fromkeys(TOKENS)
        # caching.logged_in asks for the user only when a session cookie came: asking always
        # loaded the session, and Django then added `Vary: Cookie` to a page every visitor shares.
        if "first_name" in used and request is not None and caching.logged_in(request):
            values["first_name"] = (getattr(request.user, "first_name", "") or "").strip() or None
        profile = visitor.profile if visitor is not None else None
        if profile is not None and "last_viewed_product" in used:
            values["last_viewed_product"] = last_viewed_product_title(profile)
        if profile is not None and "favourite_category" in used:
            values["favourite_category"] = category_title(favourite_category_slug(profile))
        return values

    def message(self, value: Any, request: HttpRequest | None, visitor: Visitor | None) -> str:
        """The text with each token replaced (plain text; templates escape it)."""
        text = value["text"] or ""
        known = self.token_values(text, request, visitor)
        return TOKEN.sub(lambda m: known[m[1]] or value[f"{m[1]}_fallback"] or "", text)

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        context["message"] = self.message(value, request_of(parent_context), visitor_of(parent_context))
        return context


class OnboardingSurveyBlock(blocks.StructBlock):
    heading = blocks.CharBlock(default="What are you shopping for?", max_length=120)
    intro = blocks.TextBlock(
        required=False, default="Pick a few favourites and we will show you more of them.", max_length=300
    )
    categories = blocks.ListBlock(
        CategoryChooserBlock(),
        default=[],
        required=False,
        help_text="The categories offered; leave empty to offer every category.",
    )
    button_label = blocks.CharBlock(default="Show me those first", max_length=40)
    thanks = blocks.CharBlock(default="Thanks! We will show you more of what you like.", max_length=200)

    class Meta:
        icon = "form"
        template = "tailored/blocks/onboarding_survey.html"
        group = "Personalization"
        description = (
            "Asks visitors who accepted personalization but have no history yet for their favourite "
            "categories; the answer is saved to their profile."
        )
        preview_value = {
            "heading": "What are you shopping for?",
            "intro": "Pick a few favourites and we will show you more of them.",
            "categories": [],
            "button_label": "Show me those first",
            "thanks": "Thanks! We will show you more of what you like.",
        }

    @staticmethod
    def should_ask(visitor: Visitor | None) -> bool:
        """Only a visitor whose answer can be stored (consent, an id) and who has no history."""
        if visitor is None or visitor.id is None or not visitor.consent.allows_profile:
            return False
        profile = visitor.profile
        return not (profile.preferences or profile.category_views or profile.recent_items)

    def categories_for(self, value: Any) -> list[tuple[str, str]]:
        """(slug, title) of the categories offered: the chosen ones, else every live category."""
        chosen = [page for page in value["categories"] if page is not None and page.live]
        if chosen:
            return [(page.slug, page.title) for page in chosen]
        model = category_model()
        if model is None:
            return []
        return list(model.objects.live().order_by("title").values_list("slug", "title"))

    def get_preview_context(self, value, parent_context=None):
        # The block picker shows the question, whoever the editor is as a visitor.
        return {**(parent_context or {}), "survey_preview": True}

    def get_context(self, value, parent_context=None):
        context = super().get_context(value, parent_context=parent_context)
        request = request_of(parent_context)
        preview = bool((parent_context or {}).get("survey_preview"))
        context["saved"] = request is not None and request.GET.get(SURVEY_DONE_PARAM) == "saved"
        context["ask"] = preview or (not context["saved"] and self.should_ask(visitor_of(parent_context)))
        context["action"] = survey_url() or ("#" if preview else None)
        context["choices"] = self.categories_for(value) if context["ask"] and context["action"] else []
        # From the request, not the page's context: rendered with none (`{{ page.body }}`), the form
        # still posts back with a CSRF token, and both template languages print the same inputs.
        # Only when the survey is shown (after consent): a token sets the csrftoken cookie, and no
        # cookie but the consent answer may be written before consent (issue 15 item 4).
        asking = context["ask"] and request is not None
        context["csrf_token"] = get_token(request) if asking else ""
        context["next"] = request.get_full_path() if request is not None else ""
        return context


def survey_url() -> str | None:
    """Where the survey posts; None until `tailored.blocks.urls` is included in the site's URLconf."""
    try:
        return reverse("tailored_blocks:preferences")
    except NoReverseMatch:
        return None
