"""Composes the plugin's GraphQL API into grapple's schema (`GRAPHENE = {"SCHEMA":
"grapple.schema.schema"}`): visitor, recommendations, segments, carousel and preview queries, the
three mutations. Nothing is registered without the `graphql` extra and the grapple app."""

from wagtail import hooks

from tailored.api import graphql_enabled

if graphql_enabled():

    @hooks.register("register_schema_query")
    def add_personalization_queries(query_mixins: list) -> None:
        from tailored.api.queries import PersonalizationQuery

        query_mixins.append(PersonalizationQuery)

    @hooks.register("register_schema_query")
    def add_site_queries(query_mixins: list) -> None:
        from .graphql import remember_stream_pages
        from .graphql_queries import site_query

        # First in the root Query's bases, so its `page` (grapple's plus `preview`) wins over grapple's.
        query_mixins.insert(0, site_query())
        # Grapple's page types exist now and the schema is not built yet: blocks learn their page.
        remember_stream_pages()

    @hooks.register("register_schema_mutation")
    def add_personalization_mutations(mutation_mixins: list) -> None:
        from tailored.api.mutations import PersonalizationMutation

        mutation_mixins.append(PersonalizationMutation)
