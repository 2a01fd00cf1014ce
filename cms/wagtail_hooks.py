"""The demo's registrations: articles and landing pages are recommendable beside products
(issue 22 item 6), each with the fields its content model reads."""

from wagtail import hooks

from tailored.ml.catalog import Recommendable


@hooks.register("register_tailored_recommendable")
def recommendable_pages():
    return [
        Recommendable("article", "cms.ArticlePage", text_fields=("intro", "body"), label="Articles"),
        Recommendable("landing_page", "cms.LandingPage", text_fields=("intro", "body"), category_field=None, label="Landing pages"),
    ]
