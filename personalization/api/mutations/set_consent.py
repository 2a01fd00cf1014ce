"""setConsent: the banner's answer, for headless frontends (the same cookies, the same rule)."""

from __future__ import annotations

import graphene

from tailored.services import CONSENT_CATEGORIES, consent_answer


class SetConsentError(graphene.ObjectType):
    """Why the consent answer was refused."""

    code = graphene.String(required=True, description="A stable code for the problem.")
    message = graphene.String(required=True, description="What is wrong, for a developer.")


class SetConsent(graphene.Mutation):
    """Granting anything issues a pseudonymous id; granting nothing erases what was held. Under
    Sec-GPC / DNT (or `gpc` in X-Tailored-Context) an accept is recorded as declined, with a reason."""

    class Arguments:
        analytics = graphene.Boolean(required=True, description="Allow behavioural analytics.")
        personalization = graphene.Boolean(required=True, description="Allow a profile for personalization.")
        marketing = graphene.Boolean(
            default_value=False,
            description="Allow triggers to reach the visitor outside the site (email, CRM) once they are known.",
        )

    granted = graphene.List(graphene.NonNull(graphene.String), required=True, description="The categories now granted.")
    reason = graphene.String(
        description="Why fewer categories were granted than asked for, if so: opted_out_by_browser (the "
        "browser sent Sec-GPC or DNT, so the answer was recorded as declined)."
    )
    message = graphene.String(description="The reason as a sentence to show the visitor, if there is one.")
    errors = graphene.List(graphene.NonNull(SetConsentError), required=True, description="Why nothing changed, if so.")

    @staticmethod
    def mutate(root, info, analytics, personalization, marketing=False):
        request = info.context
        asked = {"analytics": analytics, "personalization": personalization, "marketing": marketing}
        answer = consent_answer(request, [category for category in CONSENT_CATEGORIES if asked[category]])
        request._tailored_consent_update = answer.granted  # VisitorMiddleware writes the cookies
        return SetConsent(granted=list(answer.granted), reason=answer.reason, message=answer.message, errors=[])
