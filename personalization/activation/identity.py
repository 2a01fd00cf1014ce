"""Who a visitor is, for activation (issue 20 item 3).

Triggers reach only visitors who granted marketing and who are known: logged in (the user's
visitor id, `services.link_login`) or identified after a form with `tailored.identify(email)`
(the tracker's `tailored.identify(email)`, POST /identify/, or `identify()` here). The address
is stored as an HMAC-SHA256 keyed with a key derived from SECRET_KEY, so the table alone does
not reveal it; the clear address is kept only while marketing is granted, because only then may
a destination (an email, a CRM) receive it. Withdrawing marketing drops the clear address and
cancels the visitor's pending sends; erasure deletes the row.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from .models import ActivationSend, KnownVisitor

MAX_EMAIL_LENGTH = 254


class IdentityError(ValueError):
    """An address that cannot identify anyone (the message says why)."""


def normalized_email(email: object) -> str:
    """The address, trimmed and lower-cased; IdentityError when it is not an address."""
    if not isinstance(email, str) or not email.strip():
        raise IdentityError("email must be a non-empty string")
    address = email.strip().lower()
    if len(address) > MAX_EMAIL_LENGTH:
        raise IdentityError(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    try:
        validate_email(address)
    except ValidationError:
        raise IdentityError(f"{email!r} is not an email address") from None
    return address


def email_hash(email: str) -> str:
    """The keyed hash the table stores: equal addresses give equal hashes on this site only."""
    key = hashlib.sha256(f"tailored.identity:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, normalized_email(email).encode(), hashlib.sha256).hexdigest()


def identify(visitor_id: str, email: str, marketing: bool, user_id: str = "") -> KnownVisitor:
    """Record who the visitor is; the clear address only with marketing consent."""
    address = normalized_email(email) if email else ""
    defaults = {
        "email_hash": email_hash(address) if address else "",
        "email": address if marketing else "",
        "marketing": marketing,
        "identified_at": timezone.now(),
    }
    if user_id:
        defaults["user_id"] = str(user_id)
    known, _ = KnownVisitor.objects.update_or_create(visitor_id=visitor_id, defaults=defaults)
    return known


def set_marketing(visitor_id: str, granted: bool) -> None:
    """The visitor's marketing answer changed: a known visitor's row follows it."""
    if granted:
        KnownVisitor.objects.filter(visitor_id=visitor_id).update(marketing=True)
    else:
        withdraw_marketing(visitor_id)


def withdraw_marketing(visitor_id: str) -> int:
    """Marketing withdrawn: forget the clear address and skip the visitor's pending sends; the
    hash stays (it identifies no one without the address). Returns the sends skipped."""
    KnownVisitor.objects.filter(visitor_id=visitor_id).update(email="", marketing=False)
    return ActivationSend.objects.filter(visitor_id=visitor_id, status=ActivationSend.Status.PENDING).update(
        status=ActivationSend.Status.SKIPPED, last_error="marketing consent withdrawn"
    )


def known(visitor_id: str) -> KnownVisitor | None:
    return KnownVisitor.objects.filter(visitor_id=visitor_id).first()


def forget(visitor_id: str) -> dict[str, int]:
    """Erasure: the identity row and every send about the visitor."""
    identities, _ = KnownVisitor.objects.filter(visitor_id=visitor_id).delete()
    sends, _ = ActivationSend.objects.filter(visitor_id=visitor_id).delete()
    return {"identities": identities, "activation_sends": sends}


def export(visitor_id: str) -> dict:
    """What activation holds about the visitor: identity (never the hash's key) and every send."""
    identity = known(visitor_id)
    sends = ActivationSend.objects.filter(visitor_id=visitor_id).select_related("trigger", "destination")
    return {
        "identity": None if identity is None else {
            "email": identity.email or None,
            "email_stored_in_clear": bool(identity.email),
            "user_id": identity.user_id or None,
            "identified_at": identity.identified_at.isoformat(),
        },
        "sends": [
            {
                "trigger": send.trigger.name if send.trigger else None,
                "destination": send.destination.name if send.destination else None,
                "status": send.status,
                "created_at": send.created_at.isoformat(),
                "delivered_at": send.delivered_at.isoformat() if send.delivered_at else None,
                "payload": send.payload,
            }
            for send in sends
        ],
    }
