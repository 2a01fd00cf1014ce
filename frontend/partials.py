"""What the plugin adds to every page, in either template language.

`{% load tailored %}{% tailored_head %}` / `{% tailored_body %}` (Django templates, templatetags/
tailored.py) and `{{ tailored_head() }}` / `{{ tailored_body() }}` (Jinja2, jinja2tags.py) render
the same partials with the context built here, so the two languages cannot drift apart: the
partials only print what this module prepared.

    tailored/head.html            the blocks' stylesheet
    tailored/body.html            includes the three below
    tailored/consent_banner.html  until the visitor answers (and not under GPC / Do Not Track, nor
                                  on the privacy centre, whose own form replaces it): the
                                  categories, accept all, decline all, save choices
    tailored/explain.html         ?explain=1, editors only: which segments matched and why
    tailored/tracker.html         tracker.js, configured by data-tl-* attributes on its own tag
    tailored/audience_picker.html in an editor's preview as an audience (PersonalizedPageMixin),
                                  instead of the three above: who the page is shown to, and a form
                                  to pick another audience
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import mark_safe

from tailored import conf
from tailored.blocks import explained
from tailored.context.privacy_signals import browser_opts_out
from tailored.core.types import Consent
from tailored.services import explain_visitor, is_editor
from tailored.visit_memory import remembered_names

from .privacy import PRIVACY_CENTRE_FLAG, category_rows

HEAD_TEMPLATE = "tailored/head.html"
BODY_TEMPLATE = "tailored/body.html"
STYLESHEET = "tailored/blocks.css"
TRACKER = "tailored/tracker.js"


def explanation(request: HttpRequest) -> dict[str, Any] | None:
    """For a logged-in editor asking with ?explain=1: every segment, matched or not, its rule as a
    sentence and what each condition saw in words; and each personalized block of the page (they
    rendered before this panel) with its variant and why."""
    if request.GET.get("explain") != "1" or not is_editor(request):
        return None
    rows = [{**row, "explanation": explained_node(row["explanation"])} for row in explain_visitor(request)]
    names = {row["segment"]: row["name"] for row in rows}
    return {
        "rows": rows,
        "matched_rows": [row for row in rows if row["matched"]],  # shown first
        "other_rows": [row for row in rows if not row["matched"]],  # folded, each with why not
        "block_choices": [block_row(choice, names) for choice in explained.of(request)],
    }


def explained_node(node: dict[str, Any]) -> dict[str, Any]:
    """One condition of a rule's explanation, ready to print: a group (all / any / not) with its
    children, or a condition and what it saw, both in words."""
    # Imported here: the sentences use the rule builder's labels (admin code public pages skip).
    from tailored.rule_sentences import condition_words, group_words, saw

    if "children" in node:
        children = [explained_node(child) for child in node["children"]]
        return {"group": True, "words": group_words(node["condition"]), "matched": node["matched"], "children": children}
    return {
        "group": False,
        "words": condition_words(node["condition"]),
        "saw": saw(node["condition"], node.get("saw")),
        "matched": node["matched"],
    }


def block_row(choice: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """A personalized block of the page: what it shows and why, in words ("shows the fallback:
    no variant matched", "shows variant “App promo”: it matched Mobile visitors and device mobile")."""
    why = choice["reason"]
    if why is None:
        reasons = [names.get(slug, slug) for slug in choice["segments"]] + choice["tags"]
        why = f"it matched {' and '.join(reasons)}" if reasons else "it has no targeting: it is for everyone"
    shown = "the fallback" if choice["fallback"] else f"variant \u201c{choice['label']}\u201d"
    return {**choice, "shown": shown, "why": why}


# The visitor's consent state, read from their cookie in the browser, before the body renders
# (issue 21 item 1): the page's HTML is then the same for every visitor, so shared caches can
# keep it. <html data-tl-consent> is what tracker.js reads: granted (analytics or
# personalization: it sends events), declined (or opted out by Global Privacy Control or Do Not
# Track, as the server's Consent.allows_events) or unset (not asked yet); the class tl-ask shows
# the banner, which CSS hides otherwise, so it never flickers in or out.
CONSENT_STATE_SCRIPT = (
    "<script>(function(d,n){{var m=d.cookie.match(/(?:^|;\\s*){cookie}=([^;]*)/),"
    "g=m?decodeURIComponent(m[1]).split('.'):[],o={opted_out}||n.globalPrivacyControl===true||n.doNotTrack==='1',"
    "r=d.documentElement;r.dataset.tlConsent=!o&&(g.indexOf('analytics')>=0||g.indexOf('personalization')>=0)"
    "?'granted':m||o?'declined':'unset';if(!m&&!o)r.classList.add('tl-ask')}})(document,navigator)</script>"
)


def head_context(request: HttpRequest | None) -> dict[str, Any]:
    # The stylesheet also serves Wagtail's preview. No CSRF token: it would set the csrftoken
    # cookie before consent (issue 15 item 4); the consent endpoints check the site instead.
    # A Sec-GPC or DNT header the browser sent but does not expose to scripts is passed on; shared
    # pages vary on those two headers (tailored.caching), so a cache keeps both copies apart.
    opted_out = request is not None and browser_opts_out(request.META)
    return {"stylesheet": static(STYLESHEET), "consent_script": consent_script(conf.get("CONSENT_COOKIE"), opted_out)}


@cache
def consent_script(cookie: str, opted_out: bool) -> str:
    """The script for a cookie name and privacy signal (built once each, not per page)."""
    script = CONSENT_STATE_SCRIPT.format(cookie=re.escape(cookie), opted_out="true" if opted_out else "false")
    return mark_safe(script)  # noqa: S308 - our own constant, the cookie name escaped for the regex


@lru_cache(maxsize=4096)
def _page_path(page_id: int, tree_path: str) -> str:
    # Keyed by the tree path too: a page moved elsewhere gets its new sections at once.
    from wagtail.models import Page

    if len(tree_path) < 16:  # depth 3 or less: no section between the home page and this one
        return str(page_id)
    ancestors = Page.objects.filter(depth__gt=2, path__in=[tree_path[:i] for i in range(4, len(tree_path), 4)])
    return " ".join([*map(str, ancestors.order_by("depth").values_list("pk", flat=True)), str(page_id)])


def page_path(page: Any) -> str | None:
    """The ids of the sections a page is in (below the site's home page), then its own:
    tracker.js sends them with the page view, for page and section visit counts (issue 18)."""
    pk, tree_path = getattr(page, "pk", None), getattr(page, "path", None)
    if not isinstance(pk, int) or not isinstance(tree_path, str):
        return None
    return _page_path(pk, tree_path)


def body_context(
    request: HttpRequest | None, preview_audience: dict[str, Any] | None = None, page: Any = None
) -> dict[str, Any] | None:
    """The context of tailored/body.html, or None when nothing is to be shown: without a request,
    and in an editor's preview (the editor is not a visitor: no banner, no tracking), which shows
    the audience picker when the page previews as an audience (`preview_audience`)."""
    if request is None:
        return None
    if getattr(request, "is_preview", False):
        return {"picker": picker_context(preview_audience)} if preview_audience else None
    # The banner is in every page but the privacy centre (whose own form replaces it), hidden
    # unless the consent script finds no answer: the page does not read the visitor's consent.
    explained_page = explanation(request)
    on_privacy_centre = getattr(request, PRIVACY_CENTRE_FLAG, False)
    return {
        "show_banner": not on_privacy_centre,
        "categories": category_rows(Consent()),
        "consent_url": reverse("tailored_frontend:consent"),
        "privacy_url": reverse("tailored_frontend:privacy"),
        "next": request.get_full_path(),
        "show_explanation": explained_page is not None,  # also with no segment at all: the panel says so
        **(explained_page or {}),
        "tracker_src": static(TRACKER),
        "events_url": reverse("tailored:events"),
        "pages": page_path(page),
        "keep": " ".join(sorted(remembered_names())),  # the same for every visitor: cache-safe
    }


def picker_context(preview_audience: dict[str, Any]) -> dict[str, Any]:
    """What tailored/audience_picker.html prints, with every choice already marked (the templates
    hold no logic, so both languages print the same form)."""
    audience = preview_audience["audience"]

    def options(values, current):
        return [{"value": v, "label": v.title(), "selected": v == current} for v in values]

    chosen = audience.segments if audience else frozenset()
    return {
        "summary": preview_audience["summary"],
        "derived": preview_audience.get("derived", ""),
        "from_mode": preview_audience["source"] == "mode",
        "cookie": preview_audience["cookie"],
        # What the script compares the pane's width with: reload only for another device, never
        # when the editor picked one.
        "device_cookie": preview_audience.get("device_cookie", ""),
        "pane_device": preview_audience.get("pane_device", ""),
        "device_explicit": "true" if preview_audience.get("device_explicit") else "false",
        "segments": [{"slug": slug, "name": name, "checked": slug in chosen} for slug, name in preview_audience["segments"]],
        "devices": options(preview_audience["devices"], audience.device if audience else None),
        "dayparts": options(preview_audience["dayparts"], audience.daypart if audience else None),
        "weekdays": options(preview_audience["weekdays"], audience.weekday if audience else None),
        "weather": options(preview_audience["weather"], audience.weather if audience else None),
        "place": (audience.region or audience.country or "") if audience else "",
        "campaign": (audience.campaign or "") if audience else "",
    }
