"""The site composes the GraphQL schema: grapple's Wagtail types plus the personalization API."""

from wagtail import hooks

from tailored.api.mutations import PersonalizationMutation
from tailored.api.queries import PersonalizationQuery

from .graphql_queries import site_query


@hooks.register("register_schema_query")
def add_personalization_queries(query_mixins: list) -> None:
    query_mixins.append(PersonalizationQuery)


@hooks.register("register_schema_query")
def add_site_queries(query_mixins: list) -> None:
    # First in the root Query's bases, so its `page` (grapple's plus `preview`) wins over grapple's.
    query_mixins.insert(0, site_query())


@hooks.register("register_schema_mutation")
def add_personalization_mutations(mutation_mixins: list) -> None:
    mutation_mixins.append(PersonalizationMutation)
