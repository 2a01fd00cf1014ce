"""The /graphql/ endpoint: graphene-django's view with the limits of issue 6 (see `security`),
server-to-server headers checked up front, and CORS for the headless origins.

Status codes follow graphene-django's convention: a request refused before execution (a body
that is not JSON, an unknown persisted id, a non-persisted document when only persisted ones
run, a syntax or validation error, a limit, unreadable X-Tailored-* headers) is answered 400
with ``{"errors": [{"message": ..., "extensions": {"code": ...}}]}`` and no data; a request
another site sent that may not run here (`security.cross_site_refusal`) the same way with 403
and the code CROSS_SITE; errors raised while executing come with the data, and 200.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
)
from graphene_django.constants import MUTATION_ERRORS_FLAG
from graphene_django.settings import graphene_settings
from graphene_django.views import GraphQLView, HttpError

from graphql import ExecutionResult, GraphQLError, OperationType, execute, get_operation_ast
from tailored import decisions
from tailored.events.json_body import JsonBodyError, parse_json
from tailored.server_visitors import KEY_HEADER, ServerHeadersError, read_server_visitor
from tailored.services import is_editor

from . import security

HTTP_ERROR_CODES = {400: security.BAD_REQUEST, 405: security.METHOD_NOT_ALLOWED}


class Rejected(HttpError):
    """A request refused before execution, answered 400 (or `status`) with its GraphQL error."""

    def __init__(self, error: GraphQLError, status: int = 400):
        response = HttpResponseForbidden() if status == 403 else HttpResponseBadRequest()
        super().__init__(response, error.message)
        self.error = error


# graphene-django's dispatch without its `ensure_csrf_cookie`: the view is CSRF-exempt (cross-site
# requests are refused by origin, `check_same_site`), and that decorator wrote a `csrftoken` cookie
# for every visitor, before any consent, on a device that should hold only `tl_consent`.
GRAPHENE_DISPATCH = getattr(GraphQLView.dispatch, "__wrapped__", GraphQLView.dispatch)


class TailoredGraphQLView(GraphQLView):
    """GraphQLView plus persisted operations, depth/cost/list-size limits and CORS."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        origin = security.allowed_origin(request)
        if request.method == "OPTIONS":
            return security.add_cors_headers(security.preflight_response(origin), origin)
        try:
            self.check_server_headers(request)
            self.check_same_site(request, mutation=False)
        except Rejected as error:
            response = error.response
            response["Content-Type"] = "application/json"
            response.content = self.json_encode(request, {"errors": [self.format_error(error)]})
        else:
            response = GRAPHENE_DISPATCH(self, request, *args, **kwargs)
        return security.add_cors_headers(response, origin)

    @staticmethod
    def check_server_headers(request: HttpRequest) -> None:
        """Unreadable X-Tailored-* headers sent with a valid key fail loudly here rather than
        serve the wrong audience (without a valid key they are ignored)."""
        if KEY_HEADER not in request.META:
            return
        try:
            read_server_visitor(request)
        except ServerHeadersError as error:
            raise Rejected(security.rejection(str(error), security.INVALID_SERVER_CONTEXT)) from None

    @staticmethod
    def check_same_site(request: HttpRequest, *, mutation: bool) -> None:
        """A POST another site sent with the visitor's cookie is refused before its document is
        read; a mutation another site sent, once the document says it is one."""
        refusal = security.cross_site_refusal(request, mutation=mutation)
        if refusal is not None:
            raise Rejected(refusal, status=403)

    def get_graphql_params(self, request: HttpRequest, data: Any):
        query, variables, operation_name, operation_id = super().get_graphql_params(request, data)
        if operation_id is None:
            operation_id = _apollo_hash(request.GET.get("extensions") or data.get("extensions"))
        variables = variables or None
        if variables is not None and not isinstance(variables, dict):
            raise Rejected(security.rejection("`variables` must be a JSON object.", security.BAD_REQUEST))
        if operation_name is not None and not isinstance(operation_name, str):
            raise Rejected(security.rejection("`operationName` must be a string.", security.BAD_REQUEST))
        try:
            query = security.document_for(query, operation_id, security.Limits.from_settings())
        except GraphQLError as error:
            raise Rejected(error) from None
        return query, variables, operation_name, operation_id

    def execute_graphql_request(self, request, data, query, variables, operation_name, show_graphiql=False):
        """graphene-django's steps, with parsing and validation cached per document and the
        limits checked between validation and execution."""
        if not query:
            if show_graphiql:
                return None
            raise HttpError(HttpResponseBadRequest("Must provide query string."))
        limits = security.Limits.from_settings()
        schema = self.schema.graphql_schema
        prepared = security.prepare(
            schema, query, limits.max_depth, graphene_settings.MAX_VALIDATION_ERRORS, limits.max_tokens
        )
        if prepared.errors:
            return ExecutionResult(data=None, errors=list(prepared.errors))
        operation = get_operation_ast(prepared.document, operation_name)
        if operation is not None:
            if request.method.lower() == "get" and operation.operation != OperationType.QUERY:
                if show_graphiql:
                    return None
                message = f"Can only perform a {operation.operation.value} operation from a POST request."
                raise HttpError(HttpResponseNotAllowed(["POST"]), message)
            if operation.operation == OperationType.MUTATION:
                self.check_same_site(request, mutation=True)
            may_introspect = limits.introspection or is_editor(request)
            errors = security.check_operation(schema, prepared, operation, variables, limits, may_introspect)
            if errors:
                return ExecutionResult(data=None, errors=errors)
        options = {
            "root_value": self.get_root_value(request),
            "context_value": self.get_context(request),
            "variable_values": variables,
            "operation_name": operation_name,
            "middleware": self.get_middleware(request),
        }
        if self.execution_context_class:
            options["execution_context_class"] = self.execution_context_class
        try:
            if operation is not None and operation.operation == OperationType.MUTATION and _atomic_mutations():
                with transaction.atomic():
                    result = execute(schema, prepared.document, **options)
                    if getattr(request, MUTATION_ERRORS_FLAG, False) is True:
                        transaction.set_rollback(True)
                return result
            return execute(schema, prepared.document, **options)
        except Exception as error:  # as graphene-django: reported, never a 500
            return ExecutionResult(errors=[error])

    def parse_body(self, request: HttpRequest):
        """graphene-django's, with JSON (the body, and `variables` sent as a JSON string) read by
        the one safe parser: deep nesting, non-finite or over-long numbers and duplicate keys are
        a 400 with a stable code (JSON_TOO_DEEP, NUMBER_OUT_OF_RANGE, DUPLICATE_KEY), never a 500
        or a Python message. Plain invalid JSON keeps graphene's BAD_REQUEST and message."""
        if "variables" in request.GET:  # a GET's variables: checked here, read by graphene
            _safe_json(request.GET["variables"], "Variables are invalid JSON.")
        content_type = self.get_content_type(request)
        if content_type == "application/graphql":  # the body is the query (graphene's reading, minus its 500)
            try:
                return {"query": request.body.decode("utf-8")}
            except UnicodeDecodeError:
                raise Rejected(security.rejection("The query is not UTF-8 text.", security.BAD_REQUEST)) from None
        if content_type != "application/json":
            data = super().parse_body(request)
            if isinstance(data.get("variables"), str):  # a form's variables: graphene would read them with json.loads
                _safe_json(data["variables"], "Variables are invalid JSON.")
            return data
        data = _safe_json(request.body, "POST body sent invalid JSON.")
        if isinstance(data, dict) and isinstance(data.get("variables"), str):
            data["variables"] = _safe_json(data["variables"], "Variables are invalid JSON.")
        if not isinstance(data, dict):
            raise Rejected(security.rejection("The received data is not a valid JSON query.", security.BAD_REQUEST))
        return data

    def json_encode(self, request, d, pretty=False):
        """Adds `extensions.decisions`: every personalized or experimental choice in `data`."""
        made = decisions.of(request)
        if made and d.get("data") is not None:
            d = {**d, "extensions": {**d.get("extensions", {}), "decisions": made}}
        return super().json_encode(request, d, pretty)

    @staticmethod
    def format_error(error: Exception) -> dict[str, Any]:
        if isinstance(error, Rejected):
            return error.error.formatted
        if isinstance(error, HttpError):
            code = HTTP_ERROR_CODES.get(error.response.status_code, security.BAD_REQUEST)
            return {"message": error.message, "extensions": {"code": code}}
        return GraphQLView.format_error(error)


def _safe_json(text: bytes | str, invalid: str) -> Any:
    try:
        return parse_json(text)
    except JsonBodyError as error:
        if error.code == "malformed_json":
            raise Rejected(security.rejection(invalid, security.BAD_REQUEST)) from None
        raise Rejected(security.rejection(error.message, error.code.upper())) from None


def _atomic_mutations() -> bool:
    return graphene_settings.ATOMIC_MUTATIONS is True or connection.settings_dict.get("ATOMIC_MUTATIONS", False) is True


def _apollo_hash(extensions: Any) -> str | None:
    """Apollo's automatic persisted queries send the document's SHA-256 in
    extensions.persistedQuery.sha256Hash (a JSON string when sent by GET). Text that is not
    safe JSON (nested too deep, huge numbers) names no persisted query."""
    if isinstance(extensions, str):
        try:
            extensions = parse_json(extensions)
        except JsonBodyError:
            return None
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    return digest if isinstance(digest, str) else None
