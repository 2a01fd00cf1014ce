"""The GraphQL root schema: grapple's Wagtail types plus the personalized block types that
`tailored.blocks.graphql` registers when the blocks app is ready. `make schema` writes its SDL to
graphql/schema.graphql, which a test keeps in sync."""

from grapple.schema import create_schema

schema = create_schema()
