"""Nothing unknown is ignored: the one check, for every route, that each query parameter and
each body field (JSON or form) is one the route declares.

A script written for Ximilar may send a filter Kestrel does not implement (``?verified=1``,
``label_value_<id>__gte``) or a flag it has no meaning for (``mark-real``); answering as if it
had been applied would be a silent lie (a script deleting "what the filter returned" would
delete everything), so such a request answers 400 naming what is not supported.

The exceptions are few and written down here (and in docs/api.md): names accepted everywhere
because the API implements them for every route, and names accepted and ignored because
ignoring them is the correct behaviour."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Route
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.compat import ModelField
from pydantic import BaseModel

from kestrel.domain.errors import InvalidInput

#: Accepted by every route. ``workspace``: the ximilar client adds it to every request made for
#: a workspace other than its default (routes that know workspaces read it; the others ignore it).
ACCEPTED_EVERYWHERE: dict[str, str] = {
    "workspace": "selects the workspace; the ximilar client adds it to every request",
}

#: Accepted and ignored, because ignoring them is right; each with the reason.
ACCEPTED_AND_IGNORED: dict[str, str] = {
    "noresize": "Kestrel never resizes what it stores, so 'do not resize' always holds",
}

#: Names Ximilar's API knows and Kestrel refuses, with what to do instead (a plainer 400).
REFUSED_WITH_ADVICE: dict[str, str] = {
    "verified": "Kestrel keeps no verifications (Ximilar's annotate service); list without it",
    "real": "Kestrel has no real/synthetic image mark; list without it",
    "mark-real": "Kestrel has no real/synthetic image mark",
    "unmark-real": "Kestrel has no real/synthetic image mark",
}


def unsupported(name: str) -> InvalidInput:
    advice = REFUSED_WITH_ADVICE.get(name)
    if advice is None and name.startswith("label_value_"):
        advice = "Kestrel's labels carry no values (Ximilar's value labels); filter with labels= instead"
    detail = f"'{name}' is not supported by this server"
    return InvalidInput(f"{detail}: {advice}" if advice else f"{detail}; the API reference lists what each route takes")


def _names(fields: list[ModelField]) -> set[str]:
    return {name for field in fields for name in (field.name, field.alias)}


def _body_field_names(route: Route) -> set[str] | None:
    """The body fields ``route`` takes (aliases and names); None when it takes a free-form body."""
    names: set[str] = set()
    for param in route.dependant.body_params:
        model = param.type_
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        for name, info in model.model_fields.items():
            names.update({name, info.alias or name})
    return names


def _query_names(event: dict[str, Any]) -> list[str]:
    multi = event.get("multiValueQueryStringParameters") or {}
    single = event.get("queryStringParameters") or {}
    return list(dict.fromkeys([*multi, *single]))


def _body_names(event: dict[str, Any]) -> list[str]:
    # Form bodies were rewritten into JSON by kestrel.api.body before routing.
    try:
        body = json.loads(event.get("body") or "{}")
    except ValueError:
        return []  # the request validation has refused it already
    return list(body) if isinstance(body, dict) else []


def unknown_names(route: Route, event: dict[str, Any]) -> list[str]:
    """The query parameters and body fields of ``event`` that ``route`` does not take. Routes kept
    out of the OpenAPI document (the document itself, Swagger UI and its ``?format=json``) are
    not the API's and are not checked."""
    if not route.include_in_schema:
        return []
    allowed = {*ACCEPTED_EVERYWHERE, *ACCEPTED_AND_IGNORED}
    known_query = _names(route.dependant.query_params) | allowed
    unknown = [name for name in _query_names(event) if name not in known_query]
    body_fields = _body_field_names(route)
    if body_fields is not None:
        unknown += [name for name in _body_names(event) if name not in body_fields | allowed]
    return unknown


def first_unknown(app: ApiGatewayResolver) -> InvalidInput | None:
    """The refusal of the current request's first name its route does not take, if any."""
    route: Route | None = app.context.get("_route")
    unknown = unknown_names(route, app.current_event.raw_event) if route is not None else []
    return unsupported(unknown[0]) if unknown else None


def refuse_unknown_names(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Any:
    """Powertools middleware (every route): 400 naming the first name the route does not take.

    Powertools validates the request before user middlewares run; a request that also fails
    validation gets this refusal from the validation error's handler (see kestrel.api.app), so an
    unknown name is reported either way (often it is a misspelt required one)."""
    refusal = first_unknown(app)
    if refusal is not None:
        raise refusal
    return next_middleware(app)
