"""The pure decision core: plain typed functions over frozen dataclasses.

Nothing here imports Django, Wagtail, Redis or graphene (an import-linter contract enforces it),
so every decision can be tested from JSON spec cases and reused by SSR and GraphQL alike.
"""
