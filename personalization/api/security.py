"""What the GraphQL endpoint refuses, and to whom it answers (issue 6).

- Persisted operations: ``{"id": "homepage"}`` (or the SHA-256 of the file, or Apollo's
  ``extensions.persistedQuery.sha256Hash``) runs the document of graphql/operations/; with
  GRAPHQL_PERSISTED_ONLY, nothing else runs.
- Limits: document size, tokens (GRAPHQL_MAX_TOKENS, enforced by the parser itself) and
  selections (see `_SelectionMeter`), depth (nested fields, fragments expanded), cost (1 per
  field; a list field's selection counts once per item it may return: its first/last/limit/perPage
  argument, else GRAPHQL_DEFAULT_LIST_SIZE) and list sizes (any of those arguments above
  GRAPHQL_MAX_LIST_SIZE). Tokens and selections are checked before validation, whose
  overlapping-fields rule is quadratic in the selections that merge into one response field:
  4,000 repeated `visitor { id }` once took seconds to validate (issue 14 item 6).
- Introspection (``__schema``, ``__type``): for editors, and for everyone when
  GRAPHQL_INTROSPECTION is on (by default, when DEBUG is); exempt from depth and cost, as the
  standard introspection query alone is 15 levels deep.
- CORS for the headless origins of CORS_ORIGINS.
- Same-site rules, as the REST endpoints (issue 14 item 8): a mutation sent by another site's page
  is refused, and so is any POST from another site that carries the visitor's or an editor's
  cookie, but for queries from CORS_ORIGINS; callers with a valid API key are servers, exempt.

Each refusal is a GraphQLError whose extensions carry a stable code (the constants below).
Parsing, the token, selection and depth checks and validation depend on the document alone and
are cached per document text; cost and list sizes depend on the variables and are measured per
request.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    parse,
    validate,
)
from tailored import conf
from tailored.server_visitors import server_visitor

from .same_site import is_cross_site

logger = logging.getLogger(__name__)

BAD_REQUEST = "BAD_REQUEST"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
TOO_MANY_SELECTIONS = "TOO_MANY_SELECTIONS"
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"
QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
LIST_TOO_LARGE = "LIST_TOO_LARGE"
INVALID_SERVER_CONTEXT = "INVALID_SERVER_CONTEXT"
INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"
CROSS_SITE = "CROSS_SITE"

# Selections checked before validation (see `_SelectionMeter`): at most MAX_SELECTIONS in a
# document, and at most MAX_MERGED_PAIRS pairs of selections merging into one response field, the
# pairs validation compares (2,000 take it tens of milliseconds; 4,000 repeated `visitor { id }`
# are 8 million). The homepage operation has 114 selections and 72 such pairs (`heading` is in six
# block types), the full introspection query 487 selections and none.
MAX_SELECTIONS = 2000
MAX_MERGED_PAIRS = 2000
SIZE_ARGUMENTS = frozenset({"first", "last", "limit", "perPage"})
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
CORS_ALLOW_HEADERS = "Content-Type, X-Tailored-Key, X-Tailored-Visitor, X-Tailored-Context"
CORS_ALLOW_METHODS = "GET, POST, OPTIONS"


def rejection(message: str, code: str, nodes: Any = None) -> GraphQLError:
    """A GraphQL error carrying a stable code, for a request refused before execution."""
    return GraphQLError(message, nodes, extensions={"code": code})


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int
    max_cost: int
    max_list_size: int
    default_list_size: int
    max_document_chars: int
    max_tokens: int
    persisted_only: bool
    introspection: bool  # for everyone; editors may always introspect

    @classmethod
    def from_settings(cls) -> Limits:
        get = conf.get_settings().get
        return cls(
            max_depth=get("GRAPHQL_MAX_DEPTH"),
            max_cost=get("GRAPHQL_MAX_COST"),
            max_list_size=get("GRAPHQL_MAX_LIST_SIZE"),
            default_list_size=get("GRAPHQL_DEFAULT_LIST_SIZE"),
            max_document_chars=get("GRAPHQL_MAX_DOCUMENT_CHARS"),
            max_tokens=get("GRAPHQL_MAX_TOKENS"),
            persisted_only=bool(get("GRAPHQL_PERSISTED_ONLY")),
            introspection=settings.DEBUG if get("GRAPHQL_INTROSPECTION") is None else bool(get("GRAPHQL_INTROSPECTION")),
        )


# Persisted operations ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersistedOperations:
    by_id: Mapping[str, str]  # file stem and SHA-256 of the file text -> the text
    hashes: frozenset[str]


def operations_dir() -> str:
    configured = conf.get_settings().get("GRAPHQL_OPERATIONS_DIR")
    return str(configured or Path(getattr(settings, "BASE_DIR", ".")) / "graphql" / "operations")


@cache
def load_operations(directory: str) -> PersistedOperations:
    """Every *.graphql document of `directory`, read once per process."""
    by_id: dict[str, str] = {}
    hashes: set[str] = set()
    paths = sorted(Path(directory).glob("*.graphql"))
    if not paths:
        logger.warning("no persisted GraphQL operations in %s", directory)
    for path in paths:
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        by_id[path.stem] = by_id[digest] = text
        hashes.add(digest)
    return PersistedOperations(by_id, frozenset(hashes))


def document_for(query: Any, operation_id: Any, limits: Limits) -> str | None:
    """The document to run: the persisted one `operation_id` names when no query text is sent,
    else the query text, if the limits allow it. Raises a GraphQLError with a code."""
    if operation_id is not None and not query:
        operations = load_operations(operations_dir())
        text = operations.by_id.get(operation_id) if isinstance(operation_id, str) else None
        if text is None:
            raise rejection(
                f"No persisted operation has the id {str(operation_id)[:80]!r}: use the name of a file of "
                "graphql/operations/ without .graphql, or the SHA-256 of its text.",
                PERSISTED_QUERY_NOT_FOUND,
            )
        return text
    if query is None or query == "":
        return None
    if not isinstance(query, str):
        raise rejection("`query` must be a string holding a GraphQL document.", BAD_REQUEST)
    if len(query) > limits.max_document_chars:
        raise rejection(
            f"The document has {len(query)} characters; at most {limits.max_document_chars} are accepted.",
            DOCUMENT_TOO_LARGE,
        )
    if limits.persisted_only and hashlib.sha256(query.encode()).hexdigest() not in load_operations(operations_dir()).hashes:
        raise rejection(
            'Only persisted operations are accepted here: send {"id": "<operation>"} naming a document '
            "of graphql/operations/ instead of the query text.",
            PERSISTED_QUERY_REQUIRED,
        )
    return query


# Parsing, validation and depth: per document, cached ----------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    document: DocumentNode | None
    fragments: Mapping[str, FragmentDefinitionNode]
    errors: tuple[GraphQLError, ...]
    introspects: bool = False  # asks for __schema or __type


@lru_cache(maxsize=256)
def prepare(
    schema: GraphQLSchema,
    query: str,
    max_depth: int,
    max_errors: int | None = None,
    max_tokens: int | None = None,
    max_selections: int = MAX_SELECTIONS,
    max_pairs: int = MAX_MERGED_PAIRS,
) -> Prepared:
    """Parse (at most `max_tokens` tokens), check the selections and the depth, validate.
    Everything before validation takes time linear in the document, and what passes it keeps
    validation short. Cached: a frontend sends the same few documents, and parsing and validating
    one costs milliseconds."""
    try:
        document = parse_limited(query, max_tokens)
    except TooManyTokens as error:
        return Prepared(None, {}, (error.error,))
    except GraphQLError as error:
        error.extensions = {**(error.extensions or {}), "code": GRAPHQL_PARSE_FAILED}
        return Prepared(None, {}, (error,))
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    refusal = _SelectionMeter(fragments, max_selections, max_pairs).check(document)
    if refusal is not None:
        return Prepared(None, {}, (refusal,))
    meter = _DepthMeter(fragments)
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        depth = meter.depth(operation.selection_set)
        if depth > max_depth:
            message = f"The query is {depth} levels deep; at most {max_depth} levels are allowed."
            return Prepared(None, {}, (rejection(message, QUERY_TOO_DEEP, operation),))
    errors = validate(schema, document, max_errors=max_errors)
    for error in errors:
        error.extensions = {**(error.extensions or {}), "code": GRAPHQL_VALIDATION_FAILED}
    return Prepared(document, fragments, tuple(errors), meter.introspects)


class TooManyTokens(Exception):
    """The document has more tokens than allowed: parsing stopped there."""

    def __init__(self, max_tokens: int):
        super().__init__(max_tokens)
        self.error = rejection(
            f"The document has more than {max_tokens} tokens (names, punctuation, values and comments); "
            "at most that many are parsed. Send a smaller document, or a persisted operation's id.",
            TOO_MANY_TOKENS,
        )


def parse_limited(query: str, max_tokens: int | None) -> DocumentNode:
    """`parse`, stopped after `max_tokens` tokens (comments included) with TooManyTokens: a 48 KB
    document of 16,000 tokens is refused in the time it takes to read 2,000 (graphql-core 3.2.3+,
    as the `graphql` extra requires)."""
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLError as error:
        if max_tokens is not None and f"Document contains more than {max_tokens} tokens" in error.message:
            raise TooManyTokens(max_tokens) from None
        raise


class _SelectionMeter:
    """Field selections as validation will compare them, counted before it runs.

    Validation's overlapping-fields rule compares every pair of selections that merge into one
    response field (the same response path, fragments expanded, type conditions ignored), so its
    work grows with the square of their number: 4,000 repeated `visitor { id }` make 8 million
    pairs. Counting them is linear and stops at the first limit passed: at most `max_pairs` such
    pairs, and at most `max_selections` selections in all (fields, and fragment spreads, each
    fragment expanded once per path as validation merges it; fragment definitions also count on
    their own, as validation checks them on their own too). The walk keeps its own stack, so a
    deeply nested document cannot exhaust Python's."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode], max_selections: int, max_pairs: int):
        self.fragments = fragments
        self.max_selections, self.max_pairs = max_selections, max_pairs

    def check(self, document: DocumentNode) -> GraphQLError | None:
        definitions = [d for d in document.definitions if getattr(d, "selection_set", None)]
        paths: dict[tuple[int, str], int] = {}  # (parent path, response name) -> path
        counts = [0] * len(definitions)  # selections per path; one root path per definition
        spread: set[tuple[int, str]] = set()  # (path, fragment) already expanded: merged once
        total = pairs = 0
        stack = [(d.selection_set, root, frozenset()) for root, d in enumerate(definitions)]
        while stack:
            selection_set, parent, expanding = stack.pop()
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    name = (selection.alias or selection.name).value
                    path = paths.setdefault((parent, name), len(counts))
                    if path == len(counts):
                        counts.append(0)
                    pairs += counts[path]  # compared with each selection already merged there
                    counts[path] += 1
                    if pairs > self.max_pairs:
                        return self.refusal(
                            f"Fields such as `{name}` are selected into the same response field again and "
                            f"again (fragments included): validating the document would compare more than "
                            f"{self.max_pairs} pairs of selections. Select each field once."
                        )
                    if selection.selection_set:
                        stack.append((selection.selection_set, path, expanding))
                elif isinstance(selection, InlineFragmentNode):
                    stack.append((selection.selection_set, parent, expanding))
                    continue
                else:
                    name = selection.name.value
                    if name not in self.fragments or name in expanding or (parent, name) in spread:
                        continue  # unknown or cyclic (validation reports it), or already merged here
                    spread.add((parent, name))
                    stack.append((self.fragments[name].selection_set, parent, expanding | {name}))
                total += 1
                if total > self.max_selections:
                    return self.refusal(
                        f"The document has more than {self.max_selections} selections (fields and fragment "
                        "spreads, fragments counted where they are spread); ask for fewer fields."
                    )
        return None

    @staticmethod
    def refusal(message: str) -> GraphQLError:
        return rejection(message, TOO_MANY_SELECTIONS)


class _DepthMeter:
    """Nesting depth with fragments expanded (each measured once). Introspection fields count
    as one level: their subtrees are bounded by the schema and only trusted requesters may ask
    for them (see `check_operation`)."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]):
        self.fragments = fragments
        self.memo: dict[str, int] = {}
        self.visiting: set[str] = set()
        self.introspects = False

    def depth(self, selection_set: SelectionSetNode) -> int:
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value in INTROSPECTION_FIELDS:
                    self.introspects, depth = True, 1
                else:
                    depth = 1 + (self.depth(selection.selection_set) if selection.selection_set else 0)
            elif isinstance(selection, InlineFragmentNode):
                depth = self.depth(selection.selection_set)
            else:
                depth = self.fragment_depth(selection.name.value)
            deepest = max(deepest, depth)
        return deepest

    def fragment_depth(self, name: str) -> int:
        if name not in self.memo:
            if name in self.visiting or name not in self.fragments:
                return 0  # a cycle or an unknown fragment: validation reports it
            self.visiting.add(name)
            self.memo[name] = self.depth(self.fragments[name].selection_set)
            self.visiting.discard(name)
        return self.memo[name]


# Cost and list sizes: per request, as they depend on the variables ---------------------------


def check_operation(
    schema: GraphQLSchema,
    prepared: Prepared,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    limits: Limits,
    may_introspect: bool,
) -> list[GraphQLError]:
    """Errors for introspection by an untrusted requester, for list sizes above the limit and
    for a cost above the limit (empty when fine)."""
    if prepared.introspects and not may_introspect:
        message = (
            "Introspection is not available here: the schema is published as graphql/schema.graphql "
            "(GRAPHQL_INTROSPECTION; editors may always introspect)."
        )
        return [rejection(message, INTROSPECTION_DISABLED, operation)]
    values = {
        d.variable.name.value: int(d.default_value.value)
        for d in operation.variable_definitions
        if isinstance(d.default_value, IntValueNode)
    }
    values.update(variables or {})
    meter = _CostMeter(schema, prepared.fragments, values, limits)
    cost = meter.cost(schema.get_root_type(operation.operation), operation.selection_set)
    if cost > limits.max_cost:
        meter.errors.append(
            rejection(
                f"The query's estimated cost is {cost}; at most {limits.max_cost} is allowed. Each field costs 1, "
                "repeated for every item of the lists it is in (first/limit arguments, else "
                f"{limits.default_list_size}): ask for fewer items or fewer fields.",
                QUERY_TOO_COSTLY,
                operation,
            )
        )
    return meter.errors


class _CostMeter:
    def __init__(self, schema: GraphQLSchema, fragments, variables: Mapping[str, Any], limits: Limits):
        self.schema, self.fragments, self.variables, self.limits = schema, fragments, variables, limits
        self.errors: list[GraphQLError] = []
        self.memo: dict[str, int] = {}

    def cost(self, parent_type: Any, selection_set: SelectionSetNode) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field_cost(parent_type, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                total += self.cost(self.schema.get_type(condition.name.value) if condition else parent_type, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment_cost(selection.name.value)
        return total

    def fragment_cost(self, name: str) -> int:
        if name not in self.memo:
            fragment = self.fragments[name]
            self.memo[name] = 0  # validated documents hold no cycles; this only guards the recursion
            self.memo[name] = self.cost(self.schema.get_type(fragment.type_condition.name.value), fragment.selection_set)
        return self.memo[name]

    def field_cost(self, parent_type: Any, node: FieldNode) -> int:
        size = self.list_size(node)
        if not node.selection_set or node.name.value in INTROSPECTION_FIELDS:
            return 1
        field = self.field_definition(parent_type, node.name.value)
        if field is None:
            return 1
        if size is None:
            size = self.limits.default_list_size if is_list_type(get_nullable_type(field.type)) else 1
        return 1 + size * self.cost(get_named_type(field.type), node.selection_set)

    def field_definition(self, parent_type: Any, name: str):
        fields = getattr(parent_type, "fields", None)
        return fields.get(name) if fields else None

    def list_size(self, node: FieldNode) -> int | None:
        """The size argument's value, capped at the limit (an error when above it)."""
        for argument in node.arguments:
            name = argument.name.value
            if name not in SIZE_ARGUMENTS:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                size = int(value.value)
            elif isinstance(value, VariableNode):
                size = self.variables.get(value.name.value)
            else:
                continue
            if not isinstance(size, int) or isinstance(size, bool):
                continue  # not a number: argument coercion reports it
            if size > self.limits.max_list_size:
                self.errors.append(
                    rejection(
                        f"`{node.name.value}` asks for {size} items with `{name}`; at most "
                        f"{self.limits.max_list_size} items may be asked for per list.",
                        LIST_TOO_LARGE,
                        argument,
                    )
                )
                return self.limits.max_list_size
            return max(size, 0)
        return None


# Same-site rules -----------------------------------------------------------------------------


def cross_site_refusal(request: HttpRequest, *, mutation: bool) -> GraphQLError | None:
    """Why a request another site's page made the browser send may not run, if it may not: the
    REST endpoints' check (`same_site.is_cross_site`), for a mutation always, and for any POST
    that carries the visitor's or an editor's cookie unless it comes from one of CORS_ORIGINS
    (headless frontends reading pages, as before). A valid API key marks a server, not a
    browser: exempt. GETs are left as they were: they never mutate (refused with 405)."""
    if request.method != "POST" or not is_cross_site(request) or server_visitor(request) is not None:
        return None
    if mutation:
        return rejection(
            "Mutations are accepted from this site's pages, or from a server with an API key "
            "(X-Tailored-Key); this request was sent by another site.",
            CROSS_SITE,
        )
    if _carries_identity(request) and allowed_origin(request) is None:
        return rejection(
            "A request carrying the visitor's cookies is accepted from this site's pages, the "
            "origins of CORS_ORIGINS, or a server with an API key; this one was sent by another site.",
            CROSS_SITE,
        )
    return None


def _carries_identity(request: HttpRequest) -> bool:
    cookies = request.COOKIES
    return conf.get("VISITOR_COOKIE") in cookies or settings.SESSION_COOKIE_NAME in cookies


# CORS ----------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _origins(configured: tuple[str, ...]) -> frozenset[str]:
    return frozenset(origin.strip().lower().rstrip("/") for origin in configured if origin.strip())


def allowed_origin(request: HttpRequest) -> str | None:
    """The request's Origin when it is one of CORS_ORIGINS (exact scheme://host[:port]); else None."""
    origin = request.META.get("HTTP_ORIGIN")
    if not origin:
        return None
    return origin if origin.lower().rstrip("/") in _origins(tuple(conf.get("CORS_ORIGINS"))) else None


def preflight_response(origin: str | None) -> HttpResponse:
    """The answer to OPTIONS: the allowed methods and headers for an allowed origin, nothing more
    for any other (the browser then refuses the cross-origin request)."""
    response = HttpResponse(status=204)
    response["Allow"] = CORS_ALLOW_METHODS
    if origin is not None:
        response["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
        response["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response["Access-Control-Max-Age"] = str(conf.get("CORS_MAX_AGE"))
    return response


def add_cors_headers(response: HttpResponse, origin: str | None) -> HttpResponse:
    """Allow `origin` (with credentials, for cookie-based clients); vary on Origin whenever
    origins are configured, so a shared cache never serves one origin's answer to another."""
    if origin is not None:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
    if conf.get("CORS_ORIGINS"):
        patch_vary_headers(response, ("Origin",))
    return response
