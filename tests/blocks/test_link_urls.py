"""Where the library's buttons and links lead: every link field (a hero's button, a call to action,
image with text, an offer banner, a personalized message) accepts only http(s) URLs, paths of the
site, #fragments, mailto: and tel:. The page editor refuses anything else (javascript:, data:,
vbscript:, in any case, behind spaces or split by a tab) with a message on the field; a refused
value stored before the rule renders no href and GraphQL hands it out empty."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from wagtail import blocks
from wagtail.images import get_image_model

from cms.models import HomePage, LandingPage
from tailored.blocks.content import ContentStreamBlock
from tailored.blocks.links import LinkBlock, link_problem
from tests.blocks.editor_forms import add_variant, edit_form_data, personalized_prefix, stream_state
from tests.frontend.test_template_languages import render_both, visitor

pytestmark = pytest.mark.django_db

PAYLOAD = "javascript:alert(document.cookie)"
REFUSED = [
    PAYLOAD,
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "java\u200bscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "//evil.example.com/",
    "/\\evil.example.com/",
    "http://",
    "https:evil.example.com",
    "mailto:",
    "electronics/",
]
ACCEPTED = [
    "/",
    "/electronics/",
    "/search/?q=tents#results",
    "#newsletter",
    "https://shop.example.com/offers/",
    "HTTP://shop.example.com",
    "mailto:help@example.com",
    "tel:+441234567890",
    "",
]
# The link field of each block of the library, and a stored value of that block.
LINKED = {
    "hero": ("cta_url", {"heading": "Spring", "subheading": "", "cta_label": "Go there", "cta_url": "/"}),
    "cta": ("url", {"text": "Free delivery", "button_label": "Go there", "url": "/", "style": "primary"}),
    "image_text": ("url", {"image": None, "heading": "Made to last", "body": "", "image_position": "left", "link_label": "Go there", "url": "/"}),
    "offer": ("url", {"heading": "20% off", "text": "", "code": "SAVE20", "expires_at": None, "button_label": "Go there", "url": "/"}),
    "message": ("url", {
        "text": "Hi {first_name}", "first_name_fallback": "there", "last_viewed_product_fallback": "",
        "favourite_category_fallback": "", "link_label": "Go there", "url": "/",
    }),
}
NOT_ALLOWED = 'Links starting with "javascript:" are not allowed. Enter a link that starts with https://'


def stored(name: str, url: str) -> dict:
    field, value = LINKED[name]
    value = {**value, field: url}
    if name == "image_text":  # the demo's first image
        value["image"] = get_image_model().objects.order_by("pk").values_list("pk", flat=True).first()
    if name == "offer":
        value["expires_at"] = (timezone.now() + timedelta(days=7)).isoformat()
    return value


@pytest.fixture(autouse=True)
def _fresh(memory_store):
    cache.clear()
    yield
    cache.clear()


@pytest.mark.parametrize("url", REFUSED)
def test_the_rule_refuses_scripts_other_schemes_and_tricks(url):
    assert link_problem(url)


@pytest.mark.parametrize("url", ACCEPTED)
def test_the_rule_accepts_links_of_the_site_the_web_mail_and_phone(url):
    assert link_problem(url) is None


def test_every_link_field_of_the_library_is_a_link_block():
    """A field named like a link anywhere in the library (nested in a personalized block's
    variants too) takes the rule: a new block cannot forget it."""
    found = []

    def walk(block, path):
        for name, child in getattr(block, "child_blocks", {}).items():
            if name == "url" or name.endswith("_url"):
                assert isinstance(child, LinkBlock), f"{path}.{name} is not a LinkBlock"
                found.append(f"{path}.{name}")
            walk(child, f"{path}.{name}")
        if isinstance(block, blocks.ListBlock):
            walk(block.child_block, f"{path}[]")

    library = ContentStreamBlock()
    walk(library, "library")
    assert {f"library.{name}.{field}" for name, (field, _) in LINKED.items()} <= set(found)


def test_a_link_block_deconstructs_as_the_char_block_it_was():
    # Migrations and stored values do not change (makemigrations --check says so too).
    kwargs = {"required": False, "max_length": 300, "help_text": "A path such as /fashion/ or a full URL."}
    assert LinkBlock(**kwargs).deconstruct() == blocks.CharBlock(**kwargs).deconstruct()


@pytest.mark.parametrize("name", LINKED)
@pytest.mark.parametrize("url", [PAYLOAD, "JAVASCRIPT:alert(1)", " javascript:alert(1)"])
def test_each_link_field_refuses_a_javascript_url_with_a_message_on_the_field(name, url):
    block = ContentStreamBlock().child_blocks[name]
    field = LINKED[name][0]
    with pytest.raises(blocks.StructBlockValidationError) as refused:
        block.clean(block.to_python(stored(name, url)))
    assert set(refused.value.block_errors) == {field}
    assert refused.value.block_errors[field].messages == [f"{NOT_ALLOWED}, http://, / (a page of this site), # (a place on this page), mailto: or tel:."]


@pytest.mark.parametrize("name", LINKED)
def test_each_link_field_keeps_a_good_link(name):
    block = ContentStreamBlock().child_blocks[name]
    field = LINKED[name][0]
    for url in ("/electronics/", "https://shop.example.com/offers/", "#top", "mailto:help@example.com", "tel:+441234567890"):
        assert block.clean(block.to_python(stored(name, url)))[field] == url


def test_the_page_editor_shows_the_message_on_the_field_and_keeps_the_page(editor):
    home = HomePage.objects.get()
    before = home.latest_revision_id
    data = edit_form_data(editor, home)
    hero = {"heading": "Spring sale", "subheading": "", "cta_label": "Shop now", "cta_url": "java\tscript:alert(1)"}
    add_variant(data, home, "5b1f0c1e-2d3a-4c5b-8e9f-16a0b0c0d0aa", content=[{"type": "hero", "value": hero}], label="Spring")
    response = editor.post(f"/admin/pages/{home.pk}/edit/", {**data.dict(), "action-publish": "action-publish"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "The page could not be saved due to validation errors." in html
    _, errors = stream_state(html)
    index = personalized_prefix(home).split("-")[1]
    variants = errors["blockErrors"][index]["blockErrors"]["variants"]["blockErrors"]
    new = variants[str(max(map(int, variants)))]["blockErrors"]["content"]["blockErrors"]["0"]["blockErrors"]
    assert new["cta_url"]["messages"] == [
        "Remove the tabs, line breaks or invisible characters from this link, and enter a link that starts "
        "with https://, http://, / (a page of this site), # (a place on this page), mailto: or tel:."
    ]
    assert HomePage.objects.get().latest_revision_id == before  # nothing was saved


@pytest.mark.parametrize("name", LINKED)
@pytest.mark.parametrize("url", [PAYLOAD, " JavaScript:alert(1)", "data:text/html,<script>alert(1)</script>"])
def test_a_refused_link_stored_before_the_rule_renders_no_href(name, url):
    block = ContentStreamBlock().child_blocks[name]
    value = block.to_python(stored(name, url))  # as loaded from the database: never cleaned
    for html in render_both(block, value, visitor()):
        assert "script:" not in html.lower() and "data:" not in html, html
        assert "Go there" not in html, html  # no button or link leads anywhere


@pytest.mark.parametrize("name", LINKED)
def test_a_good_stored_link_renders_as_it_was(name):
    block = ContentStreamBlock().child_blocks[name]
    for url in ("/electronics/", "https://shop.example.com/a?b=1&c=2"):
        value = block.to_python(stored(name, url))
        assert value[LINKED[name][0]] == url
        for html in render_both(block, value, visitor()):
            assert f'href="{url.replace("&", "&amp;")}"' in html, html


QUERY = """query Links($path: String!) { page(urlPath: $path) { ... on LandingPage { body {
  blockType rawValue
  ... on HeroBlock { ctaUrl blocks { field rawValue ... on CharBlock { value } } }
  ... on CTABlock { url blocks { field rawValue ... on CharBlock { value } } }
  ... on ImageWithTextBlock { url blocks { field rawValue ... on CharBlock { value } } }
  ... on OfferBannerBlock { url }
  ... on PersonalizedMessageBlock { url }
  ... on PersonalizedBlock { rawValue blocks { rawValue ... on HeroBlock { ctaUrl } ... on CTABlock { url } } }
} } } }"""


def test_the_page_and_graphql_hand_out_a_refused_stored_link_empty_and_a_good_one_as_it_is(client):
    body = [{"type": name, "value": stored(name, PAYLOAD)} for name in LINKED]
    body.append({"type": "personalized", "value": {"variants": [], "fallback": [
        {"type": "hero", "value": stored("hero", PAYLOAD)}, {"type": "cta", "value": stored("cta", "/offers/")},
    ]}})
    page = LandingPage(title="Links", slug="links", body=body)
    HomePage.objects.get().add_child(instance=page)
    page.save_revision().publish()
    html = client.get("/links/").content.decode()  # the page itself, personalized fallback included
    assert "Spring" in html and "alert(document.cookie)" not in html and 'href="/offers/"' in html
    response = client.post("/graphql/", {"query": QUERY, "variables": {"path": "/links/"}}, content_type="application/json")
    data = response.json()
    assert response.status_code == 200 and "errors" not in data, data
    assert "javascript" not in json.dumps(data).lower(), data
    blocks_ = data["data"]["page"]["body"]
    hero, cta, image_text, offer, message, personalized = blocks_
    assert hero["ctaUrl"] == "" and cta["url"] == image_text["url"] == offer["url"] == message["url"] == ""
    assert json.loads(cta["rawValue"])["url"] == "" and json.loads(cta["rawValue"])["text"] == "Free delivery"
    assert {child["field"]: (child.get("value"), child["rawValue"]) for child in hero["blocks"]}["cta_url"] == ("", "")
    assert [child.get("ctaUrl", child.get("url")) for child in personalized["blocks"]] == ["", "/offers/"]
    assert json.loads(personalized["rawValue"])[1]["value"]["url"] == "/offers/"
