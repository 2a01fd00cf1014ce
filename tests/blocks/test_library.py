"""The block library: every block is complete for the picker, renders for its visitor, and loads
its products in a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.test import RequestFactory
from django.utils import timezone
from wagtail.blocks import StructBlockValidationError

from cms.models import CategoryPage, ProductPage
from tailored.blocks.commerce import OfferBannerBlock, ProductCarouselBlock, RecommendationBlock
from tailored.blocks.content import ContentStreamBlock
from tailored.blocks.engagement import PersonalizedMessageBlock
from tailored.blocks.media import ImageWithTextBlock
from tailored.blocks.personalized import PersonalizedBlock
from tailored.core.types import EMPTY_PROFILE, Consent, Context, Profile, Visitor
from tailored.models import Event

pytestmark = pytest.mark.django_db


def visitor(profile: Profile = EMPTY_PROFILE, visitor_id: str | None = None) -> Visitor:
    consent = Consent(decided=True, analytics=True, personalization=visitor_id is not None)
    return Visitor(id=visitor_id, consent=consent, context=Context(), profile=profile, segments=frozenset())


def request_for(who: Visitor | None = None, user=None, path: str = "/"):
    request = RequestFactory().get(path)
    request.user = user or AnonymousUser()
    if user is not None:  # a logged-in user came with their session cookie
        request.COOKIES[settings.SESSION_COOKIE_NAME] = "session-of-" + user.username
    request.visitor = who if who is not None else visitor()
    return request


def render(block, raw, who: Visitor | None = None, user=None) -> str:
    return block.render(block.to_python(raw), context={"request": request_for(who, user)})


def products(category="electronics", n=3) -> list[ProductPage]:
    return list(ProductPage.objects.live().filter(category__slug=category).order_by("title")[:n])


@pytest.fixture(autouse=True)
def _fresh_trending():
    cache.clear()  # trending is cached site-wide
    yield
    cache.clear()


@pytest.mark.parametrize("name", [*ContentStreamBlock().child_blocks, "personalized"])
def test_every_block_is_complete_for_the_picker_and_renders_its_preview(name):
    block = PersonalizedBlock() if name == "personalized" else ContentStreamBlock().child_blocks[name]
    assert block.meta.icon and block.meta.icon != "placeholder"
    assert block.meta.template.startswith("tailored/blocks/")
    assert block.get_description()
    preview = block.get_preview_value()
    assert preview is not None
    block.render(preview, context={"request": request_for()})


# Offer banner


def offer(expires_at):
    return {"heading": "Spring", "text": "", "code": "SPRING20", "expires_at": expires_at.isoformat(), "button_label": "", "url": ""}


def test_an_offer_shows_its_code_until_it_expires():
    html = render(OfferBannerBlock(), offer(timezone.now() + timedelta(hours=1)))
    assert "SPRING20" in html and "ends" in html
    assert render(OfferBannerBlock(), offer(timezone.now() - timedelta(seconds=1))).strip() == ""


def test_an_offer_expiry_without_a_zone_is_in_the_site_time_zone():
    block = OfferBannerBlock()
    value = block.to_python({**offer(timezone.now()), "expires_at": "2000-01-01T00:00:00"})
    assert not block.is_active(value)
    assert block.is_active(value, now=0)


# Personalized message


MESSAGE = {
    "text": "Hi {first_name}! Back for {last_viewed_product}? More {favourite_category} inside. {unknown}",
    "first_name_fallback": "there",
    "last_viewed_product_fallback": "something new",
    "favourite_category_fallback": "of everything",
    "link_label": "",
    "url": "",
}


def test_message_tokens_with_values(django_user_model):
    product = products("outdoors", 1)[0]
    profile = Profile(recent_items=(("999999", 10.0), (str(product.pk), 5.0)), category_views={"books": 7, "outdoors": 2})
    user = django_user_model(username="ada", first_name="Ada")
    html = render(PersonalizedMessageBlock(), MESSAGE, visitor(profile, "a" * 32), user=user)
    assert f"Hi Ada! Back for {product.title}? More Books inside. {{unknown}}" in html


def test_message_tokens_without_values_use_their_fallbacks():
    html = render(PersonalizedMessageBlock(), MESSAGE)
    assert "Hi there! Back for something new? More of everything inside." in html


def test_message_favourite_category_falls_back_to_survey_preferences_and_escapes():
    profile = Profile(preferences=("fashion",))
    raw = {**MESSAGE, "text": "<b>{favourite_category}</b>"}
    html = render(PersonalizedMessageBlock(), raw, visitor(profile, "a" * 32))
    assert "&lt;b&gt;Fashion&lt;/b&gt;" in html


def test_a_message_without_tokens_costs_no_query(django_assert_num_queries):
    block = PersonalizedMessageBlock()
    value = block.to_python({**MESSAGE, "text": "Hello"})
    with django_assert_num_queries(0):
        assert block.message(value, None, visitor(Profile(recent_items=(("1", 1.0),)), "a" * 32)) == "Hello"


# Product carousel


def carousel(source, **fields):
    return {"heading": "Picks", "source": source, "products": [], "category": None, "tag": "", "count": 4, **fields}


def test_carousel_manual_keeps_the_editors_order_and_drops_unpublished():
    chosen = products("electronics", 3)
    block = ProductCarouselBlock()
    chosen[1].unpublish()
    value = block.to_python(carousel("manual", products=[chosen[2].pk, chosen[0].pk, chosen[1].pk]))
    assert [p.pk for p in block.products_for(value, visitor())] == [chosen[2].pk, chosen[0].pk]


def test_carousel_by_category_and_by_tag():
    block = ProductCarouselBlock()
    books = CategoryPage.objects.get(slug="books")
    by_category = block.products_for(block.to_python(carousel("category", category=books.pk, count=3)), visitor())
    assert len(by_category) == 3 and {p.category_id for p in by_category} == {books.pk}
    by_tag = block.products_for(block.to_python(carousel("tag", tag="Coffee", count=10)), visitor())
    assert by_tag and all("coffee" in {t.slug for t in p.tags.all()} for p in by_tag)


def test_carousel_recently_viewed_is_newest_first_without_what_the_visitor_voted_down():
    a, b, c = products("books", 3)
    profile = Profile(recent_items=((str(c.pk), 3.0), (str(a.pk), 2.0), (str(b.pk), 1.0)), down_votes=frozenset({str(a.pk)}))
    block = ProductCarouselBlock()
    shown = block.products_for(block.to_python(carousel("recently_viewed")), visitor(profile, "a" * 32))
    assert [p.pk for p in shown] == [c.pk, b.pk]
    assert block.products_for(block.to_python(carousel("recently_viewed")), visitor()) == []
    assert render(block, carousel("recently_viewed")).strip() == ""  # nothing viewed: the block hides


def test_carousel_trending_ranks_by_last_weeks_views_then_newest():
    hot, warm = products("fashion", 2)
    now = timezone.now()
    rows = [(hot, 3, now), (warm, 1, now), (warm, 5, now - timedelta(days=8))]  # the old views do not count
    Event.objects.bulk_create(
        Event(visitor_id=f"v{i}-{p.pk}-{n}", event_id=f"e{i}", type="page_view", ts=ts, item=str(p.pk))
        for p, n, ts in rows for i in range(n)
    )
    block = ProductCarouselBlock()
    shown = block.products_for(block.to_python(carousel("trending", count=4)), visitor())
    assert [p.pk for p in shown[:2]] == [hot.pk, warm.pk]
    newest = ProductPage.objects.live().exclude(pk__in=[hot.pk, warm.pk]).order_by("-first_published_at", "-pk")[:2]
    assert [p.pk for p in shown[2:]] == [p.pk for p in newest]


def test_carousel_trending_is_not_crowded_out_by_views_of_products_that_are_gone():
    (hot,) = products("fashion", 1)
    gone = [f"{900000 + n}" for n in range(12)]  # viewed more than anything live, since deleted
    Event.objects.bulk_create(
        Event(visitor_id=f"v{i}-{item}", event_id=f"e{i}-{item}", type="page_view", ts=timezone.now(), item=item)
        for item in [*gone, str(hot.pk)] for i in range(3 if item == str(hot.pk) else 9)
    )
    block = ProductCarouselBlock()
    shown = block.products_for(block.to_python(carousel("trending", count=4)), visitor())
    assert len(shown) == 4 and shown[0].pk == hot.pk


def test_trending_comes_from_the_database_when_the_sites_django_cache_is_away(settings, caplog):
    """A site whose default cache is Redis: with that Redis away, trending comes from the
    database (as on a miss). (Wagtail's own page URLs read that cache too: rendering a card
    would fail in Wagtail, so the products are asked for without rendering.)"""
    (hot,) = products("fashion", 1)
    Event.objects.bulk_create(
        Event(visitor_id=f"v{i}", event_id=f"e{i}", type="page_view", ts=timezone.now(), item=str(hot.pk)) for i in range(3)
    )
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    block = ProductCarouselBlock()
    shown = block.products_for(block.to_python(carousel("trending", count=4)), visitor())
    assert len(shown) == 4 and shown[0].pk == hot.pk
    assert "not read from the cache" in caplog.text and "not kept in the cache" in caplog.text


def test_carousel_says_what_each_source_needs():
    block = ProductCarouselBlock()
    for source, field in (("manual", "products"), ("category", "category"), ("tag", "tag")):
        with pytest.raises(StructBlockValidationError) as caught:
            block.clean(block.to_python(carousel(source)))
        assert field in caught.value.block_errors


def test_carousel_renders_product_cards_with_tracking_data():
    chosen = products("electronics", 2)
    html = render(ProductCarouselBlock(), carousel("manual", products=[p.pk for p in chosen]))
    for product in chosen:
        assert f'data-tl-product="{product.pk}"' in html
        assert product.url in html
    assert "data-tl-feedback" not in html


# Recommendations


def test_recommendations_carry_thumbs_inside_each_product_and_skip_down_votes():
    first = ProductPage.objects.live().order_by("-first_published_at", "-pk").first()
    block = RecommendationBlock()
    raw = {"heading": "For you", "strategy": "recommended", "count": 3, "ask_feedback": True}
    html = render(block, raw)
    assert html.count('data-tl-feedback="up"') == 3 and html.count('data-tl-feedback="down"') == 3
    card = html.split('data-tl-product="')[1]
    assert card.index('data-tl-feedback="up"') < card.index("</li>")  # the buttons sit inside the product
    hidden = visitor(Profile(down_votes=frozenset({str(first.pk)})), "a" * 32)
    assert first.pk not in [p.pk for p in block.products_for(block.to_python(raw), hidden)]
    assert "data-tl-feedback" not in render(block, {**raw, "ask_feedback": False})


# Image with text


def test_image_with_text_renders_its_image_and_position():
    from wagtail.images import get_image_model

    image = get_image_model().objects.first()
    raw = {"image": image.pk, "heading": "Made to last", "body": "<p>Tested.</p>", "image_position": "right", "link_label": "More", "url": "/stories/"}
    html = render(ImageWithTextBlock(), raw)
    assert "image-text--right" in html and "<img" in html and "Made to last" in html and 'href="/stories/"' in html



@pytest.mark.parametrize("name", [*ContentStreamBlock().child_blocks, "personalized"])
def test_the_block_picker_previews_every_block_with_the_site_stylesheet(admin_client, name):
    stream = ContentStreamBlock()
    block = PersonalizedBlock() if name == "personalized" else stream.child_blocks[name]
    assert block.is_previewable
    response = admin_client.get("/admin/block-preview/", {"id": block.definition_prefix})
    assert response.status_code == 200
    assert "tailored/blocks.css" in response.content.decode()


def test_the_survey_preview_shows_the_question_to_any_editor(admin_client):
    from tailored.blocks.engagement import OnboardingSurveyBlock

    block = ContentStreamBlock().child_blocks["survey"]
    assert isinstance(block, OnboardingSurveyBlock)
    html = admin_client.get("/admin/block-preview/", {"id": block.definition_prefix}).content.decode()
    assert "What are you shopping for?" in html and 'name="category"' in html
