"""One mutation per module, each with its own error type (the saleor layout)."""

import graphene

from .erase_my_data import EraseMyData
from .set_consent import SetConsent
from .track_events import TrackEvents


class PersonalizationMutation(graphene.ObjectType):
    track_events = TrackEvents.Field(description="Record behavioural events for the requesting visitor.")
    set_consent = SetConsent.Field(description="Store the visitor's consent answer (sets the same cookies as the banner).")
    erase_my_data = EraseMyData.Field(description="Erase everything held about the requesting visitor.")
