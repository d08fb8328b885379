"""OpenAPI response declarations shared by the routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kestrel.api.schemas import ErrorOut

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
    model: type[BaseModel] | None, status: int = 200, errors: tuple[int, ...] = (400, 401, 404)
) -> dict[int, Any]:
    """The route's success answer (``model`` as JSON, or no content) and its error answers."""
    declared: dict[int, Any] = {}
    if model is None:
        declared[status] = {"description": "done, no content"}
    else:
        declared[status] = {"description": "OK", "content": {"application/json": {"model": model}}}
    for code in errors:
        declared[code] = {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"model": ErrorOut}},
        }
    return declared
