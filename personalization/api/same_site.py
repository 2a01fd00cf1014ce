"""The one same-site check of every endpoint that reads or writes a visitor's data (issue 14 item 8).

A browser attaches this site's cookies to requests that other sites make it send (a form POST, a
sendBeacon, a fetch), so the visitor's cookie would be the other site's credential. The REST
endpoints (`tailored.views`) and GraphQL (`tailored.api.views`, see `security.cross_site_refusal`)
refuse what the browser marks as sent by another site with this function. It imports nothing of
graphene, so the REST endpoints use it without the `graphql` extra.
"""

from __future__ import annotations

from django.http import HttpRequest

# What Sec-Fetch-Site says of a request this site's own pages sent, or the visitor typed.
SAME_SITE_FETCH = frozenset({"same-origin", "none"})


def is_cross_site(request: HttpRequest) -> bool:
    """Whether a browser marks the request as sent by another site: Sec-Fetch-Site other than
    same-origin or none (a sibling subdomain is `same-site`, and refused too), or an Origin other
    than this site's. Requests without either header (servers, scripts, old browsers' same-origin
    GETs) pass."""
    # sendBeacon cannot carry a CSRF header, so these endpoints are CSRF-exempt and instead
    # refuse anything a browser marks as coming from another site.
    if request.META.get("HTTP_SEC_FETCH_SITE", "same-origin") not in SAME_SITE_FETCH:
        return True
    origin = request.META.get("HTTP_ORIGIN")
    return bool(origin) and origin != f"{request.scheme}://{request.get_host()}"
