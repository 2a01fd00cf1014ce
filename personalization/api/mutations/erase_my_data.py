"""eraseMyData: the right to erasure, for headless frontends."""

from __future__ import annotations

import graphene

from tailored import redis_guard
from tailored.erasure import erase_visitor
from tailored.services import data_subject_id, forget_for_this_request


class EraseMyDataError(graphene.ObjectType):
    """Why nothing was erased."""

    code = graphene.String(required=True, description="no_visitor: nothing is held without a visitor id; unavailable: nothing erased yet, retry later.")
    message = graphene.String(required=True, description="What is wrong, for a developer.")


class EraseMyData(graphene.Mutation):
    """Erases the profile, the persisted events and the assignments, and forgets the id."""

    erased_events = graphene.Int(required=True, description="Persisted events deleted.")
    errors = graphene.List(graphene.NonNull(EraseMyDataError), required=True, description="Why nothing was erased, if so.")

    @staticmethod
    def mutate(root, info):
        visitor_id = data_subject_id(info.context)  # also when Sec-GPC/DNT now withholds consent
        if visitor_id is None:
            return EraseMyData(erased_events=0, errors=[EraseMyDataError(code="no_visitor", message="nothing is held: no visitor id")])
        try:
            erased = erase_visitor(visitor_id)
        except redis_guard.OUTAGE:  # typed and without internals
            message = "temporarily unavailable; nothing was erased yet, retry later"
            return EraseMyData(erased_events=0, errors=[EraseMyDataError(code="unavailable", message=message)])
        forget_for_this_request(info.context)
        return EraseMyData(erased_events=erased["events"], errors=[])
