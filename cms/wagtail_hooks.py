"""The site composes the GraphQL schema: grapple's Wagtail types plus the personalization API."""

from wagtail import hooks

from personalization.api.mutations import PersonalizationMutation
from personalization.api.queries import PersonalizationQuery


@hooks.register("register_schema_query")
def add_personalization_queries(query_mixins: list) -> None:
    query_mixins.append(PersonalizationQuery)


@hooks.register("register_schema_mutation")
def add_personalization_mutations(mutation_mixins: list) -> None:
    mutation_mixins.append(PersonalizationMutation)
