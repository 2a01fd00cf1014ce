"""What the consent banner and the privacy centre print (issue 15 item 6), prepared here so the
templates of both languages hold no logic: the consent categories with what each one means, the
visitor's current choice, the notices after an action, and every cookie and localStorage entry
the plugin may write (README "Privacy" has the same table)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from tailored import conf
from tailored.core.types import Consent
from tailored.services import (
    OPTED_OUT_BY_BROWSER,
    REASON_MESSAGES,
    data_subject_id,
    read_consent,
    resolve_visitor,
)

PRIVACY_CENTRE_TEMPLATE = "tailored/privacy_centre.html"
# Set on a request the privacy centre serves: its own form replaces the banner there.
PRIVACY_CENTRE_FLAG = "_tailored_privacy_centre"

CATEGORIES = (
    ("necessary", "Necessary", "Remembers your answer here (the tl_consent cookie). Always on."),
    (
        "analytics",
        "Analytics",
        "Counts what is viewed and clicked, for totals and experiments, under a random id. "
        "No profile of you is built and nothing is shown to you because of it.",
    ),
    (
        "personalization",
        "Personalization",
        "Builds a profile of what you browse under a random id, to show you more relevant products.",
    ),
    (
        "marketing",
        "Marketing",
        "Lets us contact you outside this site (an email about a cart you left, say), once you have "
        "told us who you are by signing in or leaving your address. Nothing is sent without it.",
    ),
)

NOTICES = {
    "saved": "Your choice is saved.",
    OPTED_OUT_BY_BROWSER: REASON_MESSAGES[OPTED_OUT_BY_BROWSER],
    "erased": "Everything held about you was erased, and your id is forgotten.",
    "erasure_queued": (
        "Your id is forgotten; what was held under it is erased as soon as our store is back "
        "(within minutes)."
    ),
    "nothing_held": "Nothing is held about you: no id was ever issued to this browser.",
}


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One cookie or localStorage entry the plugin may write on a visitor's device."""

    name: str
    kind: str
    purpose: str
    lifetime: str
    written: str


def stored_entries() -> tuple[StoredEntry, ...]:
    """Every entry the plugin writes, with the names the settings give them."""
    return (
        StoredEntry(
            conf.get("CONSENT_COOKIE"), "cookie", "your consent answer (necessary)", "180 days",
            "when you answer the banner or this page; the only entry before consent",
        ),
        StoredEntry(
            conf.get("VISITOR_COOKIE"), "cookie (HttpOnly, signed)",
            "a random pseudonymous id your events (and, with personalization, your profile) are kept under",
            "180 days", "only after you grant analytics or personalization; deleted when you withdraw",
        ),
        StoredEntry(
            conf.get("TIMEZONE_COOKIE"), "cookie", "your browser's time zone, so times of day follow your clock",
            "180 days", "by tracker.js, only after you grant analytics or personalization; removed when you withdraw",
        ),
        StoredEntry(
            "tl_queue", "localStorage", "events waiting to be sent while the network is down (200 at most)",
            "until sent", "by tracker.js, only after consent and only when sending fails",
        ),
        StoredEntry(
            "tl_dropped", "localStorage", "how many waiting events were dropped because the queue was full",
            "until you withdraw", "by tracker.js, only after consent and only when the queue overflows",
        ),
    )


def category_rows(consent: Consent) -> list[dict[str, Any]]:
    """The categories as checkboxes: necessary always on, the others as the visitor chose (off
    under GPC / DNT, which overrides any stored answer)."""
    chosen = {
        "analytics": consent.analytics and not consent.opted_out_by_browser,
        "personalization": consent.personalization and not consent.opted_out_by_browser,
        "marketing": consent.marketing and not consent.opted_out_by_browser,
    }
    return [
        {"name": name, "label": label, "description": text, "fixed": name == "necessary", "checked": chosen.get(name, True)}
        for name, label, text in CATEGORIES
    ]


def choice_summary(consent: Consent) -> str:
    """The visitor's current choice in one sentence."""
    if consent.opted_out_by_browser:
        return "Your browser sends Global Privacy Control or Do Not Track: analytics, personalization and marketing are off."
    if not consent.decided:
        return "You have not chosen yet: nothing is stored about you."
    granted = [name for name in ("analytics", "personalization", "marketing") if getattr(consent, name)]
    if not granted:
        return "You declined analytics, personalization and marketing: nothing is stored about you."
    return f"You allowed {_listed(granted)}."


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def privacy_centre_context(request: HttpRequest) -> dict[str, Any]:
    """Everything tailored/privacy_centre.html prints for this visitor."""
    consent = read_consent(request)
    visitor = resolve_visitor(request)
    holds_data = data_subject_id(request) is not None
    privacy_url = reverse("tailored_frontend:privacy")
    cookies = request.COOKIES
    return {
        "consent_url": reverse("tailored_frontend:consent"),
        "next": f"{privacy_url}?notice=saved",
        "notice": NOTICES.get(request.GET.get("notice", "")),
        "summary": choice_summary(consent),
        "categories": category_rows(consent),
        # What was kept before Sec-GPC/DNT was switched on stays theirs to download and erase.
        "holds_data": holds_data,
        "keeps_profile": visitor.id is not None and consent.allows_profile,
        "paused_by_browser": holds_data and visitor.consent.opted_out_by_browser,
        "download_url": reverse("tailored_frontend:privacy-data"),
        "erase_url": reverse("tailored_frontend:privacy-erase"),
        # Cookies this browser sent now; localStorage never reaches the server ("-" there).
        "stored": [
            {**asdict(entry), "present": ("yes" if entry.name in cookies else "no") if entry.kind.startswith("cookie") else "-"}
            for entry in stored_entries()
        ],
    }
