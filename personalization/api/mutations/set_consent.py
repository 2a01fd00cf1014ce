"""setConsent: the banner's answer, for headless frontends (the same cookies)."""

from __future__ import annotations

import graphene

from tailored.services import CONSENT_CATEGORIES


class SetConsentError(graphene.ObjectType):
    """Why the consent answer was refused."""

    code = graphene.String(required=True, description="opted_out_by_browser.")
    message = graphene.String(required=True, description="What is wrong, for a developer.")


class SetConsent(graphene.Mutation):
    """Granting anything issues a pseudonymous id; granting nothing erases what was held."""

    class Arguments:
        analytics = graphene.Boolean(required=True, description="Allow behavioural analytics.")
        personalization = graphene.Boolean(required=True, description="Allow a profile for personalization.")

    granted = graphene.List(graphene.NonNull(graphene.String), required=True, description="The categories now granted.")
    errors = graphene.List(graphene.NonNull(SetConsentError), required=True, description="Why nothing changed, if so.")

    @staticmethod
    def mutate(root, info, analytics, personalization):
        request = info.context
        if request.META.get("HTTP_SEC_GPC") == "1" or request.META.get("HTTP_DNT") == "1":
            message = "the browser sent Sec-GPC or DNT: consent cannot be recorded"
            return SetConsent(granted=[], errors=[SetConsentError(code="opted_out_by_browser", message=message)])
        answer = {"analytics": analytics, "personalization": personalization}
        granted = [category for category in CONSENT_CATEGORIES if answer[category]]
        request._tailored_consent_update = granted  # VisitorMiddleware writes the cookies
        return SetConsent(granted=granted, errors=[])
