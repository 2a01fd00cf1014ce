"""Both template languages (issue 13): every block, the consent banner, the tracker tag and the
?explain=1 panel render the same under Django templates and Jinja2, and a Django-templates site
gets all of it from `{% load tailored %}{% tailored_head %}…{% tailored_body %}`."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.template import engines
from django.test import RequestFactory, override_settings
from django.urls import reverse
from wagtail.models import Page, Site

from tailored import fragments
from tailored.blocks.content import ContentStreamBlock
from tailored.blocks.experiments import ExperimentBlock
from tailored.blocks.personalized import PersonalizedBlock
from tailored.core.types import EMPTY_PROFILE, Consent, Context, Visitor
from tests.conftest import MOBILE_UA
from tests.helpers import ssr_variants

pytestmark = pytest.mark.django_db

# A site on Django templates only: the plugin's app templates, plus the demo home page written
# in Django's language (tests/frontend/templates/cms/home_page.html).
DJANGO_ONLY = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
# The demo's engines: Jinja2 first, so blocks render with their Jinja2 templates (Django's engine
# stays for the admin and for Wagtail's own templates, such as rich text's wrapper).
JINJA2_FIRST = settings.TEMPLATES
assert JINJA2_FIRST[0]["BACKEND"].endswith("Jinja2")

MOBILE_VARIANT = "0f7c6b7e-5a55-4e0b-8f0e-3b7d5e2c9a11"  # home: the "Get the app" CTA for mobile
TOKEN = re.compile(r'((?:name="csrfmiddlewaretoken" value|name="csrf-token" content)=")[^"]*"')


@pytest.fixture(autouse=True)
def _fresh(memory_store):
    cache.clear()  # trending products and rendered fragments are cached site-wide
    yield
    cache.clear()


class _Tokens(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        self.tokens.append(("<", tag, tuple(sorted((name, value or "") for name, value in attrs))))

    def handle_endtag(self, tag):
        self.tokens.append(("</", tag))

    def handle_data(self, data):
        if text := " ".join(data.split()):
            self.tokens.append(("text", text))


def normalised(html: str) -> list[tuple]:
    """What a browser shows and scripts read: elements, attributes (entities decoded, in any
    order) and text, whatever the whitespace. CSRF tokens differ per render: they are masked."""
    parser = _Tokens()
    parser.feed(TOKEN.sub(r'\1TOKEN"', str(html)))
    parser.close()
    return parser.tokens


def visitor(device: str = "desktop", segments: frozenset[str] = frozenset()) -> Visitor:
    # A consenting visitor with no history: the onboarding survey asks them.
    consent = Consent(decided=True, analytics=True, personalization=True)
    return Visitor(id="7" * 32, consent=consent, context=Context(device=device), profile=EMPTY_PROFILE, segments=segments)


def request_for(who: Visitor, path: str = "/", user=None):
    request = RequestFactory().get(path)
    request.user = user or AnonymousUser()
    request.visitor = request._tailored_visitor = who
    return request


def render_in(templates: list[dict], block, value, who: Visitor) -> str:
    with override_settings(TEMPLATES=templates):
        cache.clear()
        return str(block.render(value, context={"request": request_for(who)}))


def render_both(block, value, who: Visitor) -> tuple[str, str]:
    return render_in(DJANGO_ONLY, block, value, who), render_in(JINJA2_FIRST, block, value, who)


BLOCK_TYPES = [*ContentStreamBlock().child_blocks, "personalized", "experiment"]


def block_of(name: str):
    special = {"personalized": PersonalizedBlock, "experiment": ExperimentBlock}
    return special[name]() if name in special else ContentStreamBlock().child_blocks[name]


@pytest.mark.parametrize("name", BLOCK_TYPES)
def test_every_block_type_renders_the_same_in_both_languages(name):
    block = block_of(name)
    django_html, jinja2_html = render_both(block, block.get_preview_value(), visitor())
    assert normalised(django_html) == normalised(jinja2_html)
    assert normalised(django_html), f"{name} rendered nothing to compare"


def demo_blocks():
    """Every top-level block of the demo's pages, with where it comes from."""
    for page in Page.objects.live().specific():
        for child in getattr(page, "body", None) or ():
            yield f"{page.slug}/{child.block_type}/{child.id}", child


@pytest.mark.parametrize("who", [visitor(), visitor("mobile"), visitor(segments=frozenset({"electronics-fans"}))], ids=["desktop", "mobile", "fan"])
def test_the_demo_pages_render_the_same_in_both_languages(who):
    shown = set()
    for where, child in demo_blocks():
        django_html, jinja2_html = render_both(child.block, child.value, who)
        assert normalised(django_html) == normalised(jinja2_html), where
        shown |= {child.block_type, *re.findall(r'data-tl-block="([a-z-]+)"', django_html)}
    # Top-level blocks and, inside personalized and experiment blocks, what this visitor was shown.
    assert {"personalized", "experiment", "rich_text", "product-carousel", "image-text"} <= shown


# A Django-templates site


@pytest.fixture
def django_site():
    # Fragments other tests cached with the Jinja2 templates must not stand in for Django's.
    fragments.invalidate_page(Site.objects.get(is_default_site=True).root_page_id)
    with override_settings(TEMPLATES=DJANGO_ONLY):
        yield


@pytest.mark.usefixtures("django_site")
@pytest.mark.parametrize("loop", ["page.body", "include_block", "block"])
def test_a_django_templates_page_personalizes_each_block_for_its_visitor(client, loop):
    path = "/" if loop == "page.body" else f"/?loop={loop}"
    mobile = client.get(path, HTTP_USER_AGENT=MOBILE_UA)
    assert mobile.status_code == 200
    assert [t.name for t in mobile.templates][0] == "cms/home_page.html"
    mobile_html = mobile.content.decode()
    assert ssr_variants(mobile_html)[1] == MOBILE_VARIANT
    assert "Get the app" in mobile_html
    desktop_html = client.get(path).content.decode()
    assert ssr_variants(desktop_html)[1] == "fallback"
    assert "Get the app" not in desktop_html and "Free delivery on orders over 50." in desktop_html


@pytest.mark.usefixtures("django_site")
def test_a_django_templates_page_gets_the_stylesheet_banner_and_tracker(client):
    response = client.get("/")
    html = response.content.decode()
    assert '<link rel="stylesheet" href="/static/tailored/blocks.css">' in html
    assert 'class="consent-banner"' in html and 'value="accept">Accept all</button>' in html
    # No CSRF token before consent: it would set the csrftoken cookie (issue 15 item 4).
    assert "csrf" not in html and not response.cookies
    tracker = (
        f'<script src="/static/tailored/tracker.js" data-tl-endpoint="{reverse("tailored:events")}"'
        f' data-tl-consent-url="{reverse("tailored_frontend:consent")}" data-tl-privacy-url="{reverse("tailored_frontend:privacy")}"'
        f' data-tl-pages="{Site.objects.get(is_default_site=True).root_page_id}" defer></script>'
    )
    assert tracker in html  # the page's id goes with its page views, for page visit counts
    assert "tl-explain" not in html


@pytest.mark.usefixtures("django_site")
def test_a_django_templates_page_explains_the_segments_to_an_editor(client):
    client.force_login(get_user_model().objects.get(username="editor"))
    html = client.get("/?explain=1").content.decode()
    assert 'class="tl-explain"' in html
    assert re.search(r'data-tl-explain-segment="new-visitors" data-matched="(true|false)"', html)
    assert "(saw: " in html and "data-tl-explain-sentence" in html


@pytest.mark.usefixtures("django_site")
def test_a_declined_visitor_gets_the_page_a_new_visitor_gets(client):
    """Consent is read in the browser (the head's script), so the HTML is the same: a shared
    cache may keep one copy for both."""
    new_visitor = client.get("/").content
    client.cookies["tl_consent"] = "none"
    assert client.get("/").content == new_visitor
    assert b"tl_consent=([^;]*)" in new_visitor


# The tag library and the Jinja2 extension


def tags(request) -> tuple[str, str]:
    """(Django, Jinja2) renders of the head and body one-liners for `request`."""
    django = engines["django"].from_string("{% load tailored %}{% tailored_head %}{% tailored_body %}")
    jinja2 = engines["jinja2"].from_string("{{ tailored_head() }}{{ tailored_body() }}")
    return django.render({}, request), jinja2.render({}, request)


def test_both_languages_render_the_same_banner_and_tracker():
    django_html, jinja2_html = tags(request_for(visitor(), "/shop/?q=a&b=<c>"))
    assert 'class="consent-banner"' in jinja2_html and "/static/tailored/tracker.js" in jinja2_html
    assert 'value="/shop/?q=a&amp;b=%3Cc%3E"' in jinja2_html  # the next URL, escaped
    assert normalised(django_html) == normalised(jinja2_html)


def test_both_languages_render_the_same_explain_panel():
    editor = get_user_model().objects.get(username="editor")
    django_html, jinja2_html = tags(request_for(visitor(), "/?explain=1", user=editor))
    assert 'class="tl-explain"' in jinja2_html and "tl-explain__group" in jinja2_html
    assert normalised(django_html) == normalised(jinja2_html)


def test_an_editors_preview_gets_no_banner_no_panel_and_no_tracker():
    editor = get_user_model().objects.get(username="editor")
    request = request_for(visitor(), "/?explain=1", user=editor)
    request.is_preview = True
    django_html, jinja2_html = tags(request)
    for html in (django_html, jinja2_html):
        assert "tailored/blocks.css" in html  # the preview still shows styled blocks
        assert "consent-banner" not in html and "tl-explain" not in html and "tracker.js" not in html


def test_an_editors_preview_as_an_audience_shows_the_same_picker_in_both_languages():
    from tailored.frontend.preview import Audience

    editor = get_user_model().objects.get(username="editor")
    request = request_for(visitor(), "/", user=editor)
    request.is_preview = True
    preview_audience = {
        "source": "picker", "audience": Audience(segments=frozenset({"electronics-fans"}), device="mobile", region="GB-ENG"),
        "summary": "Electronics fans · mobile · GB-ENG", "segments": [("electronics-fans", "Electronics fans"), ("outdoors-fans", "Outdoors fans")],
        "devices": ("mobile", "tablet", "desktop"), "dayparts": ("morning", "evening"), "weekdays": ("mon",),
        "weather": ("rain",), "cookie": "tl_preview_audience",
    }
    django = engines["django"].from_string("{% load tailored %}{% tailored_body %}").render({"preview_audience": preview_audience}, request)
    jinja2 = engines["jinja2"].from_string("{{ tailored_body() }}").render({"preview_audience": preview_audience}, request)
    assert 'data-tl-audience-summary>Electronics fans · mobile · GB-ENG</strong>' in django
    assert 'value="electronics-fans" checked>' in django and 'value="outdoors-fans">' in django
    assert '<option value="mobile" selected>Mobile</option>' in django and 'value="GB-ENG"' in django
    assert "tracker.js" not in django and "consent-banner" not in django
    assert normalised(django) == normalised(jinja2)


def test_recommended_pages_cut_their_intro_alike_in_both_languages():
    """Django's truncatewords:24 and Jinja2's truncate(160) cut a long intro differently."""
    from cms.models import ArticlePage

    article = ArticlePage.objects.live().order_by("-first_published_at", "-pk").first()
    article.intro = " ".join(f"word{n}" for n in range(60))  # 60 words, over 160 characters
    article.save_revision().publish()
    block = ContentStreamBlock().child_blocks["recommendations"]
    value = block.to_python({"heading": "Read next", "item_type": "article", "strategy": "trending", "count": 12, "ask_feedback": False})
    django_html, jinja2_html = render_both(block, value, visitor())
    assert "word23 …" in django_html and "word24" not in django_html
    assert normalised(django_html) == normalised(jinja2_html)
