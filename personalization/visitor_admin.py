"""Settings → Visitors: one visitor's data, for support and data-rights requests.

An editor with the `tailored.look_up_visitors` permission enters a visitor id (or the `tl_vid`
cookie's value, or a user's username or email address) and sees what is held: the profile, the
segments the visitor is in now, persona, scores, recent events and experiment arms; they can
download it (the same JSON as `GET /api/me/data`) or erase it (the same erasure as `DELETE
/api/me`). Every look-up, export and erasure is audited (`DataRightsAudit`, with the editor's
username in `detail["by"]`)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST
from wagtail.admin.menu import MenuItem

from tailored import conf, erasure, redis_guard
from tailored.core.segments import matching_segments
from tailored.core.types import Profile
from tailored.models import DataRightsAudit, PendingErasure, Segment
from tailored.models import Event as StoredEvent
from tailored.products import product_model
from tailored.segment_insights import last_known_context
from tailored.segments import segment_cache
from tailored.services import user_visitor_id

PERMISSION = "tailored.look_up_visitors"
VISITOR_ID = re.compile(r"[0-9a-f]{32}")
RECENT_EVENTS = 20


class LookupForm(forms.Form):
    visitor = forms.CharField(
        label="Visitor id or user",
        max_length=254,
        help_text=(
            "A visitor id (32 hexadecimal digits: the start of the visitor's tl_vid cookie, before the first colon), "
            "or a user's username or email address."
        ),
    )

    def clean_visitor(self) -> str:
        """The visitor id the input names."""
        value = self.cleaned_data["visitor"].strip()
        candidate = value.split(":", 1)[0].lower()  # the whole cookie value works too
        if VISITOR_ID.fullmatch(candidate):
            return candidate
        users = list(get_user_model().objects.filter(Q(username__iexact=value) | Q(email__iexact=value))[:2])
        if len(users) > 1:
            raise ValidationError(f"More than one user has the email address “{value}”: enter the username.")
        if users:
            return user_visitor_id(users[0].pk)
        raise ValidationError(
            f"“{value}” is neither a visitor id (32 hexadecimal digits) nor the username or email address of a user."
        )


def require_permission(request: HttpRequest) -> str:
    """The editor's username; PermissionDenied (403) without the look-up permission."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied("Looking up visitors needs the “Can look up, export and erase a visitor's data” permission.")
    return request.user.get_username()


def visitor_summary(visitor_id: str, now: float) -> dict[str, Any]:
    """What the look-up page shows of one visitor."""
    segment_set, _ = segment_cache.current()
    try:
        profile = conf.get_profile_store().get(visitor_id, now, segment_set.windows)
        store_unavailable = False
    except redis_guard.OUTAGE:  # the stored events can still be shown
        profile, store_unavailable = Profile(), True
    site_time = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(settings.TIME_ZONE))
    matched = matching_segments(segment_set.definitions, profile, last_known_context(profile, site_time), now)
    events = StoredEvent.objects.filter(visitor_id=visitor_id)
    event_count = events.count()
    return {
        "visitor_id": visitor_id,
        "store_unavailable": store_unavailable,
        "profile": profile,
        "held": bool(profile.page_views or profile.first_seen or profile.assignments or event_count),
        "first_seen": _when(profile.first_seen),
        "last_seen": _when(profile.last_seen),
        "segments": list(Segment.objects.filter(slug__in=matched).order_by("name")),
        "scores": sorted(profile.scores.items()),
        "assignments": sorted(profile.assignments.items()),
        "recent_items": _item_titles(profile.recent_items),
        "events": list(events.order_by("-ts")[:RECENT_EVENTS]),
        "event_count": event_count,
        "erasure_queued": PendingErasure.objects.filter(visitor_id=visitor_id).exists(),
    }


def _when(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


def _item_titles(recent: tuple[tuple[str, float], ...]) -> list[tuple[str, str, datetime | None]]:
    """(item id, product title or "", when viewed), newest first."""
    model = product_model()
    ids = [item for item, _ in recent]
    titles = {}
    if model is not None and ids:
        titles = {str(pk): title for pk, title in model.objects.filter(pk__in=[i for i in ids if i.isdigit()]).values_list("pk", "title")}
    return [(item, titles.get(item, ""), _when(ts)) for item, ts in recent]


def lookup(request: HttpRequest) -> HttpResponse:
    """The form, and with `?visitor=` the visitor's data (audited)."""
    editor = require_permission(request)
    form = LookupForm(request.GET or None)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        visitor_id = form.cleaned_data["visitor"]
        context.update(visitor_summary(visitor_id, time.time()))
        DataRightsAudit.objects.create(action=DataRightsAudit.Action.LOOKUP, visitor_id=visitor_id, detail={"by": editor})
    return TemplateResponse(request, "personalization/visitors/lookup.html", context)


@require_POST
def export(request: HttpRequest, visitor_id: str) -> HttpResponse:
    """The visitor's data as a JSON download (as `GET /api/me/data` gives it), audited."""
    editor = require_permission(request)
    data = erasure.export_visitor(_valid_id(visitor_id), consent=None, by=editor)
    response = HttpResponse(json.dumps(data, indent=2, default=str), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="visitor-{visitor_id}.json"'
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def erase(request: HttpRequest, visitor_id: str) -> HttpResponse:
    """GET: a confirmation naming what goes; POST: erase (or queue it while Redis is down)."""
    editor = require_permission(request)
    visitor_id = _valid_id(visitor_id)
    if request.method == "GET":
        return TemplateResponse(request, "personalization/visitors/erase.html", {"visitor_id": visitor_id})
    detail = erasure.erase_or_queue(visitor_id, by=editor)
    if detail is None:
        messages.warning(request, f"Redis is unavailable: the erasure of visitor {visitor_id} is queued and completes when Redis is back.")
    else:
        messages.success(request, f"Visitor {visitor_id} erased: {_erased_text(detail)}.")
    return HttpResponseRedirect(reverse("tailored_visitors:lookup") + "?" + urlencode({"visitor": visitor_id}))


def _valid_id(visitor_id: str) -> str:
    if not VISITOR_ID.fullmatch(visitor_id):
        raise Http404(f"“{visitor_id}” is not a visitor id.")
    return visitor_id


def _erased_text(detail: dict[str, Any]) -> str:
    labels = (("events", "stored events"), ("profile_keys", "profile keys"), ("stream_entries", "unstored stream entries"))
    return ", ".join(f"{detail.get(key, 0)} {label}" for key, label in labels)


class VisitorsMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION)


urlpatterns = [
    path("", lookup, name="lookup"),
    path("<str:visitor_id>/export/", export, name="export"),
    path("<str:visitor_id>/erase/", erase, name="erase"),
]
