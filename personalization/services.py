"""The only I/O orchestration. SSR views, blocks and GraphQL resolvers all go through here
(the django-allauth "flows" shape), so every path sees the same visitor and makes the same choices."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from tailored import caching, conf, erasure, holdout, redis_guard, seen_items
from tailored.context import context_from_request
from tailored.context.privacy_signals import browser_opts_out
from tailored.core.audience import with_audience
from tailored.core.rules import CompiledRule
from tailored.core.segments import matching_segments
from tailored.core.types import (
    EMPTY_PROFILE,
    Consent,
    Event,
    Profile,
    Snapshot,
    Visitor,
    Window,
)
from tailored.events.schema import stored_url
from tailored.experiments import services as experiments
from tailored.insights import metrics
from tailored.profiles.base import RecordResult

from .activation.traits import set_traits  # noqa: F401  (re-exported: services.set_traits, issue 20)
from .segments import segment_cache
from .server_visitors import server_visitor

logger = logging.getLogger(__name__)

VISITOR_ID = re.compile(r"^[0-9a-f]{32}\Z")
# The id cookie is signed (Django's signer: SECRET_KEY, then SECRET_KEY_FALLBACKS), so an id is
# honoured only if this site issued it; a made-up or pre-signing cookie is a new visitor.
VISITOR_COOKIE_SALT = "tailored.visitor-id"
# Revenue drives lifetime value, segments and experiment results, so it is taken only from
# callers that can be trusted with it: Python code (record_events with purchase_event) or a
# server holding an API key. A browser can send any value (issue 14 item 9).
SERVER_ONLY_EVENT_TYPES = frozenset({"purchase"})
UNTRUSTED_PURCHASE = "untrusted_purchase"
UNTRUSTED_PURCHASE_MESSAGE = (
    "purchases are accepted from the server only: record them in your order code with "
    "tailored.services.record_events(visitor, [tailored.services.purchase_event(order_id, value)]), "
    "or send them with an X-Tailored-Key API key"
)
# The categories a visitor chooses; "necessary" (their answer, the tl_consent cookie) is always on.
# Marketing (issue 20) lets triggers reach the visitor outside the site; alone it stores nothing.
CONSENT_CATEGORIES = ("analytics", "personalization", "marketing")
CONSENT_MAX_AGE = 180 * 86400
OPTED_OUT_BY_BROWSER = "opted_out_by_browser"
REASON_MESSAGES = {
    OPTED_OUT_BY_BROWSER: (
        "Your browser sends Global Privacy Control or Do Not Track, so analytics and "
        "personalization stay off: your answer was recorded as declined."
    ),
}


@dataclass(frozen=True, slots=True)
class ConsentAnswer:
    """What was recorded of a consent answer, and why it differs from what was asked, if it does
    (`reason`: a stable code such as "opted_out_by_browser"; `message`: a sentence for people)."""

    granted: tuple[str, ...]
    reason: str | None = None

    @property
    def message(self) -> str | None:
        return REASON_MESSAGES.get(self.reason) if self.reason else None

    def as_json(self) -> dict[str, Any]:
        """{"granted": [...]}, plus "reason" and "message" when less was granted than asked."""
        if self.reason is None:
            return {"granted": list(self.granted)}
        return {"granted": list(self.granted), "reason": self.reason, "message": self.message}


def resolve_visitor(request: HttpRequest, now: float | None = None) -> Visitor:
    """Identity, context, profile and segments for this request; computed once per request."""
    cached = getattr(request, "_tailored_visitor", None)
    if cached is not None:
        return cached
    started = time.perf_counter()  # for /metrics (issue 17)
    now = time.time() if now is None else now
    server = server_visitor(request)  # a headless frontend's server acting for its visitor (issue 6)
    if server is not None:
        consent, visitor_id, context = server.consent, server.visitor_id, server.context(now)
    else:
        consent = read_consent(request)
        visitor_id = _visitor_id(request) if consent.allows_events else None
        context = context_from_request(request, now)
        # A proxy's key decides its four facts for pages a cache may share: never a visitor with an
        # id, whose page is private (caching.policy) and chosen as GraphQL chooses it, by their own.
        audience = caching.proxy_audience(request) if visitor_id is None else None
        if audience is not None:
            context = with_audience(context, audience)
    segment_set, windows = segment_cache.current()
    profile = EMPTY_PROFILE
    if visitor_id and context.device != "bot":
        profile = _read_profile(visitor_id, now, windows, consent)
    evaluating = time.perf_counter()
    segments = matching_segments(segment_set.definitions, profile, context, now)
    done = time.perf_counter()
    metrics.observe_resolve(done - started, done - evaluating)
    visitor = Visitor(id=visitor_id, consent=consent, context=context, profile=profile, segments=segments, resolved_at=now)
    request._tailored_visitor = visitor
    return visitor


def read_consent(request: HttpRequest) -> Consent:
    """The consent cookie, overridden by the browser's Global Privacy Control or Do Not Track."""
    cached = getattr(request, "_tailored_consent", None)
    if cached is None:
        cached = request._tailored_consent = _consent_from_cookies(request)
    return cached


def _consent_from_cookies(request: HttpRequest) -> Consent:
    opted_out = browser_opts_out(request.META)
    if conf.get("CONSENT_COOKIE") not in request.COOKIES:
        return Consent(opted_out_by_browser=opted_out)
    return granted_consent(_granted_in_cookie(request), opted_out)


def granted_consent(granted: Collection[str], opted_out_by_browser: bool = False) -> Consent:
    """The answer that grants these categories."""
    return Consent(
        decided=True,
        analytics="analytics" in granted,
        personalization="personalization" in granted,
        marketing="marketing" in granted,
        opted_out_by_browser=opted_out_by_browser,
    )


def _granted_in_cookie(request: HttpRequest) -> set[str]:
    """The categories the consent cookie records (not yet overridden by GPC / DNT)."""
    raw = request.COOKIES.get(conf.get("CONSENT_COOKIE")) or ""
    return set(raw.split(".")) & set(CONSENT_CATEGORIES)


def opted_out_by_browser(request: HttpRequest) -> bool:
    """GPC or DNT for this request: the browser's own header, or, for a trusted server acting
    for its visitor, the `gpc` field of X-Tailored-Context (server_visitors)."""
    server = server_visitor(request)
    if server is not None:
        return server.consent.opted_out_by_browser
    return browser_opts_out(request.META)


def consent_answer(request: HttpRequest, asked: Sequence[str]) -> ConsentAnswer:
    """THE consent rule (issue 15 item 3), for the banner form, tracker.js, GraphQL setConsent
    and servers with an API key alike: the categories asked for are granted, unless the browser
    opted out (Sec-GPC: 1 or DNT: 1, or `gpc` in X-Tailored-Context); then analytics and
    personalization are recorded as declined (both are tracking that GPC and DNT refuse, and
    "necessary" is never asked), no id is issued, and the answer says why."""
    wanted = tuple(category for category in CONSENT_CATEGORIES if category in asked)
    if wanted and opted_out_by_browser(request):
        return ConsentAnswer(granted=(), reason=OPTED_OUT_BY_BROWSER)
    return ConsentAnswer(granted=wanted)


def record_events(visitor: Visitor, events: Sequence[Event], now: float | None = None) -> RecordResult:
    """Store a validated batch for a consenting visitor: the dedup window and the stream entry
    the workers persist (aggregate counts, experiments) for analytics consent; with
    personalization consent also the profile counters (seen by the very next request).
    Server-side events (purchases with their order value) enter here too; see `purchase_event`."""
    if visitor.id is None or not visitor.consent.allows_events or visitor.context.device == "bot" or not events:
        return RecordResult(stored=(), duplicates=0)
    snapshot = Snapshot(device=visitor.context.device, country=visitor.context.country, segments=visitor.segments)
    now = time.time() if now is None else now
    events = [_path_only(event) for event in events]
    build_profile = visitor.consent.allows_profile  # analytics only: no profile to target with
    result = conf.get_profile_store().record(visitor.id, events, now, snapshot, build_profile=build_profile, resolved_at=visitor.resolved_at)
    experiments.count_conversions(visitor, result.stored, now)  # goal events of experiments (issue 8)
    holdout.count_conversions(visitor, result.stored, now)  # the global holdout's goals (issue 9 item 7)
    return result


def _path_only(event: Event) -> Event:
    """The event as stored: its URL cut to the path (events.schema.stored_url)."""
    path = stored_url(event.url)
    return event if path == event.url else replace(event, url=path)


def untrusted_purchases(request: HttpRequest, items: Sequence[Any]) -> list[int]:
    """Positions of server-only events (purchases) in a batch the request sent over HTTP; none
    when a server with a valid API key sent it. The endpoints refuse such a batch whole, before
    anything is stored, so no profile, segment, experiment or holdout counter sees its value."""
    if server_visitor(request) is not None:
        return []
    # A type that is not text is left to validation (its precise error): it cannot name a server-only type.
    return [
        i for i, item in enumerate(items)
        if isinstance(item, dict) and isinstance(kind := item.get("type"), str) and kind in SERVER_ONLY_EVENT_TYPES
    ]


def live_count(rule: CompiledRule, now: float | None = None, hours: int = 24, limit: int = 10_000) -> tuple[int, int]:
    """How many of the visitors active in the last `hours` match `rule` now: (matching, scanned).
    Context conditions see each visitor's last device and country and the site's current time
    (`segment_insights.live_counts`, which counts many rules in one pass)."""
    from tailored.segment_insights import live_counts  # it imports Wagtail's reference index

    counted = live_counts({"rule": rule}, now, hours, limit)
    return counted.matching["rule"], counted.scanned


def segment_sizes(slug: str, days: int = 30, now: float | None = None) -> list[tuple[date, int]]:
    """Distinct visitors in the segment per day (HyperLogLog estimates), oldest first."""
    sizes = conf.get_profile_store().segment_sizes(slug, days, time.time() if now is None else now)
    return [(date.fromordinal(date(1970, 1, 1).toordinal() + day), count) for day, count in sizes]


def is_editor(request: HttpRequest) -> bool:
    """A logged-in user who may use the Wagtail admin: the only one who sees explanations and previews."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.has_perm("wagtailadmin.access_admin"))


def explain_visitor(request: HttpRequest) -> list[dict[str, Any]]:
    """Every enabled segment, whether this visitor is in it, and why: the value each condition
    saw, the segment's name and its rule as a sentence an editor reads (issue 16 item 4)."""
    # Imported here: the sentences read the rule builder's labels (tailored.forms, admin code).
    from tailored.models import Segment
    from tailored.rule_sentences import sentence

    visitor = resolve_visitor(request)
    segment_set, _ = segment_cache.current()
    now = time.time()
    slugs = [definition.slug for definition in segment_set.definitions]
    names = dict(Segment.objects.filter(slug__in=slugs).values_list("slug", "name")) if slugs else {}
    return [
        {
            "segment": definition.slug,
            "name": names.get(definition.slug, definition.slug),
            "matched": definition.slug in visitor.segments,
            "sentence": sentence(definition.rule.source),
            "explanation": definition.rule.explain(visitor.profile, visitor.context, now),
        }
        for definition in segment_set.definitions
    ]


def purchase_event(order_id: str, value: float, items: Sequence[int] = (), currency: str | None = None) -> Event:
    """A server-side purchase (checkout code calls this, then `record_events`). The order id is
    the event id, so recording the same order twice counts it once."""
    attrs: dict[str, Any] = {"order_id": order_id, "value": float(value), "items": list(items)}
    if currency:
        attrs["currency"] = currency
    return Event(id=f"order-{order_id}"[:64], type="purchase", ts=time.time(), attrs=attrs)


def set_consent(request: HttpRequest, response: HttpResponse, asked: Sequence[str]) -> ConsentAnswer:
    """Record the visitor's answer by the one consent rule (`consent_answer`) and return it. A
    pseudonymous id is issued only when events may be kept under it (analytics or
    personalization). Withdrawing any category that was granted erases what was held under the
    id; a visitor who still grants something then starts again under a new id (the old one stays
    erased: a late worker never revives it)."""
    answer = consent_answer(request, asked)
    cookie = {"max_age": CONSENT_MAX_AGE, "samesite": "Lax", "secure": request.is_secure()}
    response.set_cookie(conf.get("CONSENT_COOKIE"), ".".join(answer.granted) or "none", **cookie)
    previously = _granted_in_cookie(request)
    held = _ids_held_for(request, user_too=bool(previously or answer.granted))
    existing_id = held[0] if held else None
    withdrawn = previously - set(answer.granted)
    # Marketing alone stores nothing under the id: withdrawing it stops activation (the clear
    # address goes, pending sends are skipped) and keeps the profile the other categories allow.
    if existing_id and (withdrawn - {"marketing"} or not answer.granted):
        for visitor_id in held:
            erasure.erase_or_queue(visitor_id)
        existing_id = None
    elif existing_id:
        _marketing_answer(existing_id, "marketing" in answer.granted)
    if granted_consent(answer.granted).allows_events:  # marketing alone stores nothing under an id: none is issued
        issued = getattr(request, "_tailored_new_visitor_id", None)  # this request's new id, if any
        set_visitor_cookie(request, response, existing_id or issued or uuid.uuid4().hex)
    else:
        forget_visitor_cookies(request, response)
    return answer


def _ids_held_for(request: HttpRequest, user_too: bool) -> list[str]:
    """The ids data may be held under for this visitor, the one events go under first: a
    logged-in user's own id (`_visitor_id`), when they consent or did, then the signed cookie's
    if it names another (an anonymous id from before the login)."""
    user = getattr(request, "user", None)
    ids = [user_visitor_id(user.pk)] if user_too and user is not None and user.is_authenticated else []
    cookie_id = _cookie_visitor_id(request)
    return ids + [cookie_id] if cookie_id and cookie_id not in ids else ids


def _marketing_answer(visitor_id: str, granted: bool) -> None:
    from tailored.activation import identity

    identity.set_marketing(visitor_id, granted)


def identify(visitor: Visitor, email: str) -> bool:
    """Record who the visitor is, after a form they filled in (issue 20 item 3): the address is
    kept as a keyed hash, and in clear only with marketing consent. False (nothing stored) when
    the visitor has no id (no consent) or is a bot; IdentityError for an invalid address."""
    from tailored.activation import identity

    if visitor.id is None or visitor.context.device == "bot":
        return False
    address = identity.normalized_email(email)  # before anything is stored
    identity.identify(visitor.id, address, marketing=visitor.consent.allows_marketing)
    return True


def forget_visitor_cookies(request: HttpRequest, response: HttpResponse) -> None:
    """Delete what only consent allowed on the visitor's device: the id, the time-zone hint and
    Django's CSRF cookie, which only pages shown after consent set (the onboarding survey); a
    logged-in user keeps that one, as their admin forms need it."""
    response.delete_cookie(conf.get("VISITOR_COOKIE"), samesite="Lax")
    response.delete_cookie(conf.get("TIMEZONE_COOKIE"), samesite="Lax")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        response.delete_cookie(
            settings.CSRF_COOKIE_NAME, path=settings.CSRF_COOKIE_PATH,
            domain=settings.CSRF_COOKIE_DOMAIN, samesite=settings.CSRF_COOKIE_SAMESITE,
        )


def user_visitor_id(user_pk: object) -> str:
    """A logged-in user's pseudonymous visitor id: stable across devices, not reversible."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"tailored-user:{user_pk}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def link_login(request: HttpRequest, user: Any) -> None:
    """On login, fold the anonymous profile into the user's and switch the cookie to the user's id
    (VisitorMiddleware sets it on the response). The anonymous id is then erased (by the workers,
    off the login request): once the cookie names the user, nothing the visitor can ask for
    (export, erasure) would reach what stayed under it."""
    consent = read_consent(request)
    if not consent.allows_profile:
        return
    target = user_visitor_id(user.pk)
    _known_on_login(target, user, consent)
    anonymous = _cookie_visitor_id(request)
    if anonymous and anonymous != target:
        try:
            _fold_into_user(anonymous, target)
        except Exception as error:  # a failed merge must not fail the login
            logger.warning("could not merge the anonymous profile on login: %s", error)
        erasure.queue_erasure(anonymous)
    request._tailored_new_visitor_id = target


def _fold_into_user(anonymous: str, target: str) -> None:
    """What follows the visitor into the user's id: the profile, the stored events and the items
    seen (never recommended again). The rest (experiment exposures, stream entries not yet
    stored) goes with the anonymous id's erasure."""
    from tailored.models import Event as StoredEvent

    conf.get_profile_store().merge(anonymous, target, time.time())
    seen_items.fold(anonymous, target)
    the_users = StoredEvent.objects.filter(visitor_id=target).values("event_id")
    StoredEvent.objects.filter(visitor_id=anonymous).exclude(event_id__in=the_users).update(visitor_id=target)


def _known_on_login(visitor_id: str, user: Any, consent: Consent) -> None:
    """A logged-in visitor is known for activation (their address only with marketing consent)."""
    from tailored.activation import identity

    try:
        email = getattr(user, "email", "") or ""
        identity.identify(visitor_id, email, marketing=consent.allows_marketing, user_id=str(user.pk))
    except identity.IdentityError:  # its message quotes the address: never in a log
        logger.warning("could not record the logged-in user %s for activation: their email address is not valid", user.pk)
    except Exception as error:  # an odd account must not fail the login
        logger.warning("could not record the logged-in visitor for activation: %s", error)


def set_visitor_cookie(request: HttpRequest, response: HttpResponse, visitor_id: str) -> None:
    """Write the signed, HttpOnly id cookie (the only way it is written)."""
    response.set_signed_cookie(
        conf.get("VISITOR_COOKIE"), visitor_id, salt=VISITOR_COOKIE_SALT, max_age=CONSENT_MAX_AGE,
        httponly=True, samesite="Lax", secure=request.is_secure(),
    )


def _visitor_id(request: HttpRequest) -> str:
    """The id of a visitor whose consent allows a profile. Without a valid signed cookie (none, a
    forged one, or one from before ids were signed) they are a new visitor: a fresh id, which
    VisitorMiddleware sets on the response, so nobody can read another visitor's profile."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user_visitor_id(user.pk)
    visitor_id = _cookie_visitor_id(request) or getattr(request, "_tailored_new_visitor_id", None)
    if visitor_id is None:
        visitor_id = request._tailored_new_visitor_id = uuid.uuid4().hex
    return visitor_id


def data_subject_id(request: HttpRequest) -> str | None:
    """Whose data this request may export or erase: the visitor's id, or the one their signed
    cookie still holds when nothing may be stored now (Sec-GPC or DNT switched on after consent,
    a bot-like User-Agent). Holding the signed, HttpOnly cookie is what proves it is theirs; a
    server sending for a visitor (an API key) names the id it already sends events under."""
    visitor = resolve_visitor(request)
    if visitor.id is not None:
        return visitor.id
    return None if server_visitor(request) is not None else _cookie_visitor_id(request)


def forget_for_this_request(request: HttpRequest) -> None:
    """After an erasure inside a request (GraphQL eraseMyData): VisitorMiddleware deletes the
    cookies, and the rest of the request (a later mutation of the same document) knows no id, so
    it writes nothing under the erased one."""
    request._tailored_forget = True
    visitor = getattr(request, "_tailored_visitor", None)
    if visitor is not None:
        request._tailored_visitor = replace(visitor, id=None, profile=EMPTY_PROFILE)


def _cookie_visitor_id(request: HttpRequest) -> str | None:
    """The id in the signed cookie; None when it is missing, unsigned or forged. Checked as
    `request.get_signed_cookie` would, with signers built once per key set (building one per
    request cost as much as the check itself)."""
    name = conf.get("VISITOR_COOKIE")
    raw = request.COOKIES.get(name)
    if raw is None or getattr(request, "_tailored_forget", False):  # erased in this request
        return None
    signers = _cookie_signers(
        name, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS), settings.SIGNING_BACKEND,
        getattr(settings, "SIGNED_COOKIE_LEGACY_SALT_FALLBACK", True),
    )
    return _checked_cookie(raw, signers)


@lru_cache(maxsize=4096)
def _checked_cookie(raw: str, signers: tuple[signing.Signer, ...]) -> str | None:
    """The id in a signed cookie value, or None. Memoised by the exact value and the signers (new
    ones when a key changes): a returning visitor's cookie is the same on every request, and its
    two HMACs were a tenth of resolving them. A value is only ever accepted as the check accepts it."""
    for signer in signers:
        try:
            value = signer.unsign(raw)
        except signing.BadSignature:
            continue
        return value if VISITOR_ID.match(value) else None
    return None


@lru_cache(maxsize=8)
def _cookie_signers(name: str, key: str, fallbacks: tuple[str, ...], backend: str, legacy: bool) -> tuple[signing.Signer, ...]:
    """The signers Django's signed cookies try, in its order: the salt it signs with now, then
    (where Django has both, and the setting allows it) the salt of cookies set before. Keyed by
    the settings they read, so a rotated SECRET_KEY takes effect at once."""
    new_salt = getattr(signing, "_cookie_signer_salt", None)
    salts = [name + VISITOR_COOKIE_SALT]  # Django's salt before the length-prefixed one
    if new_salt is not None:
        salts = [new_salt(name, VISITOR_COOKIE_SALT), *(salts if legacy else [])]
    return tuple(signing.get_cookie_signer(salt=salt) for salt in salts)


def _read_profile(visitor_id: str, now: float, windows: frozenset[Window], consent: Consent) -> Profile:
    """The visitor's profile; with analytics consent only, nothing but their experiment
    assignments (kept sticky and counted), so no rule targets them by behaviour."""
    profile = _stored_profile(visitor_id, now, windows if consent.allows_profile else frozenset())
    if consent.allows_profile:
        return profile
    return Profile(visitor_id=visitor_id, assignments=profile.assignments)


def _stored_profile(visitor_id: str, now: float, windows: frozenset[Window]) -> Profile:
    store = conf.get_profile_store()
    read = getattr(store, "get_for_request", store.get)  # the Redis store keeps window sums between requests
    try:
        profile = read(visitor_id, now, windows)
    except redis_guard.Unavailable:  # the guard already said so once; pages go on with defaults
        return Profile(visitor_id=visitor_id)
    except Exception as error:  # the store being down must never break a page
        logger.warning("profile store unavailable, serving defaults: %s", error)
        return Profile(visitor_id=visitor_id)
    erasure.complete_after_recovery(getattr(store, "client", None))
    return profile
