"""The one place where errors become HTTP answers: ``{"detail": "..."}`` with a 4xx code for
domain errors, and 503 with ``Retry-After`` when a backing service stayed busy through its retries."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from kestrel.domain.errors import (
    Conflict,
    InvalidInput,
    KestrelError,
    NotFound,
    NotImplementedYet,
    TooLarge,
    Unauthenticated,
)
from kestrel.ports.errors import Unavailable

STATUS_FOR_ERROR: dict[type[KestrelError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    NotImplementedYet: 501,
}


def status_for(error: KestrelError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[kind]
    return 400


def error_body(status: int, detail: str, with_status: bool = False) -> dict[str, Any]:
    """``{"detail": ...}``; ``with_status`` adds ``status: {code, text}`` (classify's answers all
    carry it: the ximilar client raises its exception from it)."""
    body: dict[str, Any] = {"detail": detail}
    if with_status:
        body["status"] = {"code": status, "text": detail}
    return body


def error_response(
    status: int, detail: str, headers: dict[str, str] | None = None, *, with_status: bool = False
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(status, detail, with_status)),
        headers=headers,
    )


def unavailable_response(error: Unavailable, *, with_status: bool = False) -> Response[str]:
    """503: nothing the client sent was wrong; the same request may be sent again after a pause."""
    return error_response(503, error.detail, {"Retry-After": str(error.retry_after)}, with_status=with_status)


def proxy_error(status: int, detail: str) -> dict[str, Any]:
    """The same answer as a raw API Gateway proxy response, for errors before routing."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps({"detail": detail}),
        "isBase64Encoded": False,
    }


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """pydantic's errors as one readable sentence: where, and what is wrong there."""
    parts = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        kind = error.get("type", "")
        if kind == "json_invalid":
            parts.append('the body is not valid JSON; send a JSON object such as {"name": "..."}')
            continue
        where = location[0] if location else "body"
        field = ".".join(location[1:])
        if where == "body" and not field:
            message = f"body: {error.get('msg', 'invalid')}"
        elif where == "body":
            message = f"field '{field}': {error.get('msg', 'invalid')}"
        else:
            message = f"{where} parameter '{field}': {error.get('msg', 'invalid')}"
        parts.append(message)
    return "; ".join(parts) or "the request is not valid"
