"""The recognition API as one Powertools REST resolver: routes, validation, errors, OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from kestrel import __version__
from kestrel.api import classify, images, labels, review, similar, tasks, versions, workspaces
from kestrel.api.context import WORKSPACE_PARAM, provide_ports
from kestrel.api.errors import describe_validation_errors, error_response, status_for, unavailable_response
from kestrel.api.public import API_PREFIX, DOCS_PATH, OPENAPI_PATH
from kestrel.api.strict import first_unknown, refuse_unknown_names
from kestrel.domain.errors import KestrelError
from kestrel.ports import Ports
from kestrel.ports.errors import Unavailable

TITLE = "Kestrel recognition API"
DESCRIPTION = (
    "Trainable image recognition, wire-compatible with Ximilar's recognition v2 API. "
    "Authenticate with the header `Authorization: Token <key>`. Every path answers with and "
    'without its trailing slash; errors are `{"detail": "..."}`.'
)
OPENAPI_SETTINGS: dict[str, Any] = {
    "title": TITLE,
    "version": __version__,
    "openapi_version": "3.1.0",
    "description": DESCRIPTION,
    "security_schemes": {
        "token": APIKey(
            name="Authorization",
            in_=APIKeyIn.header,
            description="the text 'Token ' followed by your API key",
        )
    },
    "security": [{"token": []}],
}


def base_path(event: APIGatewayProxyEvent) -> str:
    """The path prefix in front of the API's own paths: ``/<stage>`` on an execute-api URL
    (``https://<id>.execute-api.<region>.amazonaws.com/prod/recognition/v2/...``), where API
    Gateway passes the path without the stage; "" on the local gateway, whose stage ("local") is
    not part of its URLs. Powertools' Swagger page derives its server the same way."""
    context = event.request_context
    stage = context.stage
    if stage and stage != "$default" and (context.path or "").startswith(f"/{stage}/"):
        return f"/{stage}"
    return ""


WORKSPACE_PARAMETER: dict[str, Any] = {
    "name": WORKSPACE_PARAM,
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "the workspace to work in (its id; 'Default' or none: the default workspace); "
    "may also be given as 'workspace' in a JSON body",
}


def openapi_document_of(app: APIGatewayRestResolver, server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI document, with 204 answers declared without a body (Powertools would give
    them an ``application/json`` null from the routes' ``Response[None]`` annotation).

    ``server_url`` is where "Try it out" sends requests (relative to the document's host): "/"
    locally and in docs/openapi.json, ``/<stage>`` behind API Gateway (see :func:`base_path`)."""
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(servers=[Server(url=server_url)], **OPENAPI_SETTINGS)
    )
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("204")
            if isinstance(answer, dict):
                answer.pop("content", None)
            if path.startswith(API_PREFIX):
                # Read by RequestScope.space for every recognition route, not by each route.
                operation.setdefault("parameters", []).append(WORKSPACE_PARAMETER)
    return document


def build_app(logger: Logger, ports: Callable[[], Ports] | None = None) -> APIGatewayRestResolver:
    """The recognition API; ``ports`` provides each request's ports (the OpenAPI document needs none)."""
    if ports is not None:
        provide_ports(ports)
    app = APIGatewayRestResolver(
        enable_validation=True,
        # A response that breaks its own schema is our bug: answer 500 and log it, never 400.
        response_validation_error_http_code=500,
        cors=CORSConfig(
            allow_origin="*",
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],  # the console waits as long as a 503 asks
            max_age=600,
        ),
    )
    for module in (tasks, labels, images, versions, classify, similar, workspaces, review):
        app.include_router(module.router)
    app.use(middlewares=[refuse_unknown_names])  # nothing unknown is ignored, on every route

    def answers_with_status() -> bool:
        return app.current_event.path.rstrip("/") == classify.PATH

    @app.exception_handler(KestrelError)
    def domain_error(error: KestrelError) -> Response[str]:
        return error_response(status_for(error), error.detail, with_status=answers_with_status())

    @app.exception_handler(Unavailable)
    def busy(error: Unavailable) -> Response[str]:
        # Throttled or unreachable after the clients' retries: the caller may simply try again.
        logger.warning("a backing service is unavailable", extra={"service": error.what, "reason": error.reason})
        return unavailable_response(error, with_status=answers_with_status())

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_body(_: RequestUnsupportedContentType) -> Response[str]:
        return error_response(
            415,
            "unsupported Content-Type: send application/json, multipart/form-data or application/x-www-form-urlencoded",
            with_status=answers_with_status(),
        )

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[str]:
        detail = describe_validation_errors(list(error.errors()))
        refusal = first_unknown(app)  # a misspelt field shows up as unknown and as missing
        if refusal is not None:
            detail = f"{refusal.detail}; {detail}"
        return error_response(400, detail, with_status=answers_with_status())

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        event = app.current_event
        return error_response(
            404, f"no route for {event.http_method} {event.path}; the API reference is at {DOCS_PATH}/"
        )

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[str]:
        # The traceback goes to the log (with the request id); the client gets no internals.
        logger.exception("unhandled error")
        return error_response(500, "internal error; the server log has the details", with_status=answers_with_status())

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_document() -> Response[str]:
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=json.dumps(openapi_document_of(app, base_path(app.current_event) or "/")),
        )

    # No ``servers``: Powertools then takes the server from each request (the stage prefix on AWS).
    app.enable_swagger(path=DOCS_PATH, **OPENAPI_SETTINGS)
    return app
