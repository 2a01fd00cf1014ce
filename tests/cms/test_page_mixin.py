"""The demo's pages get preview-as-audience and the Experiments tab from the plugin's
PersonalizedPageMixin, as a site owner's pages would (issue 13 item 2)."""

from cms.models import ArticlePage, CategoryPage, HomePage, LandingPage
from tailored.frontend.pages import PersonalizedPageMixin


def tab_headings(page_class) -> list[str]:
    return [str(tab.heading) for tab in page_class.get_edit_handler().children]


def test_pages_with_the_mixin_have_the_experiments_tab_beside_wagtails_own():
    for page_class in (HomePage, LandingPage, ArticlePage):
        assert issubclass(page_class, PersonalizedPageMixin)
        assert tab_headings(page_class) == ["Content", "Promote", "Settings", "Experiments"]


def test_pages_without_the_mixin_keep_wagtails_tabs():
    assert "Experiments" not in tab_headings(CategoryPage)


def test_the_mixin_offers_a_preview_mode_per_segment(db):
    from tailored.models import Segment

    Segment.objects.create(name="Bargain hunters", slug="bargain-hunters", rule={"all": [{"field": "profile.sessions", "op": "gte", "value": 3}]})
    modes = dict(HomePage().preview_modes)
    assert any("bargain-hunters" in mode for mode in modes)
