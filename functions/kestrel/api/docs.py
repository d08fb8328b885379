"""OpenAPI response declarations shared by the routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kestrel.api.responses import ErrorOut

_ERROR_TEXT = {
    400: "invalid input (the detail says which field and why)",
    401: "missing or invalid token",
    404: "no such item for this account",
    409: "conflicts with the current state",
    413: "payload over a size limit",
    501: "not available in this release",
    503: "a backing service is busy; retry after the Retry-After header's seconds",
}


def responses(
    status: int = 200,
    errors: tuple[int, ...] = (400, 401, 404),
    error_model: type[BaseModel] = ErrorOut,
) -> dict[int, Any]:
    """The route's success answer and its error answers. The success body is described by the
    route's return type (the model Powertools validates the answer against); 204 has none.

    ``error_model`` describes the errors the API's own code answers; a 401 comes from the
    authorizer before the route runs, so it is always a plain ``ErrorOut``."""
    declared: dict[int, Any] = {status: {"description": "done, no content" if status == 204 else "OK"}}
    for code in errors:
        declared[code] = {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"model": ErrorOut if code == 401 else error_model}},
        }
    return declared
