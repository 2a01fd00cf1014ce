"""GraphQL types for the requesting visitor. Every field has a description."""

from __future__ import annotations

import graphene
from graphene.types.generic import GenericScalar

from tailored.core.types import Visitor


class ConsentType(graphene.ObjectType):
    """What the visitor agreed to; Sec-GPC / DNT override any stored answer."""

    analytics = graphene.Boolean(required=True, description="Behavioural analytics is allowed.")
    personalization = graphene.Boolean(required=True, description="A profile may be kept for personalization.")
    decided = graphene.Boolean(required=True, description="The visitor answered the consent banner.")
    opted_out_by_browser = graphene.Boolean(required=True, description="The browser sent Sec-GPC or DNT.")


class ContextType(graphene.ObjectType):
    """Facts about this request only (never stored); null where nobody could establish them."""

    device = graphene.String(required=True, description="mobile, tablet, desktop or bot.")
    daypart = graphene.String(description="morning, afternoon, evening or night, in the visitor's local time.")
    weekday = graphene.String(description="mon ... sun, in the visitor's local time.")
    country = graphene.String(description="ISO 3166-1 alpha-2 country, from a trusted header or GeoIP.")
    region = graphene.String(description="ISO 3166-2 region.")
    referrer_class = graphene.String(description="search, social, email, direct, campaign or other.")
    utm_campaign = graphene.String(description="The UTM campaign of this request, if any.")
    locale = graphene.String(description="The preferred language tag.")
    weather = graphene.String(description="clear, clouds, rain, snow, storm or fog, where the visitor is.")


class ScoreType(graphene.ObjectType):
    """A model score between 0 and 1, e.g. churn_risk."""

    name = graphene.String(required=True, description="The score's name.")
    value = graphene.Float(required=True, description="The score, from 0 to 1.")


class AssignmentType(graphene.ObjectType):
    """The visitor's arm of one running experiment (issue 8)."""

    experiment = graphene.String(required=True, description="The experiment's key.")
    arm = graphene.String(required=True, description="The key of the arm the visitor sees (the control for the holdout).")


class VisitorType(graphene.ObjectType):
    """The visitor this request is for: the same resolution the server-rendered page uses."""

    id = graphene.String(
        description="The pseudonymous visitor id, for a server with an API key (X-Tailored-Key) only; null for browsers (it is the key to their data) and without consent."
    )
    segments = graphene.List(graphene.NonNull(graphene.String), required=True, description="Slugs of the segments the visitor is in now.")
    persona = graphene.String(description="The machine-learned persona, when the models have assigned one.")
    scores = graphene.List(graphene.NonNull(ScoreType), required=True, description="Model scores held in the profile.")
    consent = graphene.Field(ConsentType, required=True, description="What the visitor agreed to.")
    context = graphene.Field(ContextType, required=True, description="Facts about this request.")
    assignments = graphene.List(
        graphene.NonNull(AssignmentType),
        required=True,
        description="The visitor's arms of running experiments they take part in (sticky); for headless frontends.",
    )
    explain = GenericScalar(
        description="For editors only (null otherwise): every enabled segment, whether the visitor is in it, "
        "and the value each condition saw: the same as ?explain=1 on a page."
    )

    @staticmethod
    def resolve_id(visitor: Visitor, info) -> str | None:
        # The id opens the visitor's data (export, erase), so a browser never reads it where a
        # script could; the trusted server that sent it in X-Tailored-Visitor already knows it.
        from tailored.server_visitors import server_visitor

        return visitor.id if server_visitor(info.context) is not None else None

    @staticmethod
    def resolve_segments(visitor: Visitor, info) -> list[str]:
        return sorted(visitor.segments)

    @staticmethod
    def resolve_persona(visitor: Visitor, info) -> str | None:
        return visitor.profile.persona

    @staticmethod
    def resolve_scores(visitor: Visitor, info) -> list[ScoreType]:
        return [ScoreType(name=name, value=value) for name, value in sorted(visitor.profile.scores.items())]

    @staticmethod
    def resolve_assignments(visitor: Visitor, info) -> list[AssignmentType]:
        from tailored.experiments.services import assignments

        return [AssignmentType(experiment=key, arm=arm) for key, arm in assignments(visitor).items()]

    @staticmethod
    def resolve_explain(visitor: Visitor, info):
        from tailored.services import explain_visitor, is_editor

        return explain_visitor(info.context) if is_editor(info.context) else None
