"""Queries of the personalization API."""

from __future__ import annotations

import graphene

from tailored.services import resolve_visitor

from .types import VisitorType


class PersonalizationQuery(graphene.ObjectType):
    visitor = graphene.Field(
        VisitorType,
        required=True,
        description="The requesting visitor (their cookies and User-Agent): id, segments, persona, scores, explanation.",
    )

    @staticmethod
    def resolve_visitor(root, info):
        return resolve_visitor(info.context)
