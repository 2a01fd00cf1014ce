"""The page ids tracker.js sends with a page view (issue 18 item 3): the sections below the home
page, then the page, so that page and section visit counts can be kept."""

from __future__ import annotations

import pytest
from wagtail.models import Page, Site

from tailored.frontend.partials import page_path

pytestmark = pytest.mark.django_db


def test_a_deep_page_names_its_sections_top_first_and_a_move_is_seen():
    home = Site.objects.get(is_default_site=True).root_page
    blog = home.add_child(instance=Page(title="Blog", slug="blog-x"))
    year = blog.add_child(instance=Page(title="2026", slug="y2026"))
    post = year.add_child(instance=Page(title="Hello", slug="hello"))
    assert page_path(home) == str(home.pk)
    assert page_path(blog) == str(blog.pk)
    assert page_path(post) == f"{blog.pk} {year.pk} {post.pk}"
    post.move(blog, pos="last-child")
    assert page_path(Page.objects.get(pk=post.pk)) == f"{blog.pk} {post.pk}"


def test_something_that_is_not_a_page_has_no_path():
    assert page_path(None) is None
    assert page_path({"pk": 3}) is None
