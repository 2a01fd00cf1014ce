"""The personalization GraphQL API (graphene), composed into the site schema in cms/."""
