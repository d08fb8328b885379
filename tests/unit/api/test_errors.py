"""``describe_validation_errors``: pydantic's errors as one sentence saying where and what.

The errors are the real ones: a Powertools resolver with validation on (as the API's) resolves
events directly (no HTTP), and the RequestValidationError it raises is captured."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from kestrel.api.errors import describe_validation_errors, error_response, proxy_error, status_for
from kestrel.domain.errors import (
    Conflict,
    InvalidInput,
    KestrelError,
    NotFound,
    NotImplementedYet,
    TooLarge,
    Unauthenticated,
)

NO_CONTEXT = cast(LambdaContext, None)  # the routes never look at the Lambda context


class Place(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str
    floor: int = 0


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    count: int = 1
    place: Place | None = None
    tags: list[str] = []


def _resolver() -> tuple[APIGatewayRestResolver, list[list[dict[str, Any]]]]:
    app = APIGatewayRestResolver(enable_validation=True)
    captured: list[list[dict[str, Any]]] = []

    @app.post("/things")
    def create(thing: Thing) -> dict[str, Any]:
        return thing.model_dump()

    @app.get("/things")
    def listing(
        page: Annotated[int, Query(ge=1)] = 1,
        search: Annotated[str | None, Query(max_length=5)] = None,
    ) -> dict[str, Any]:
        return {"page": page, "search": search}

    @app.exception_handler(RequestValidationError)
    def invalid(error: RequestValidationError) -> Response[str]:
        captured.append(list(error.errors()))
        return Response(status_code=400, content_type="application/json", body="{}")

    return app, captured


def _errors(method: str, body: str | None = None, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The validation errors Powertools raises for this request (it must raise some)."""
    app, captured = _resolver()
    event = {
        "resource": "/things",
        "path": "/things",
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "requestContext": {"httpMethod": method, "path": "/things", "resourcePath": "/things", "stage": "test"},
        "body": body,
        "isBase64Encoded": False,
    }
    answer = app.resolve(event, NO_CONTEXT)
    assert answer["statusCode"] == 400, answer
    assert len(captured) == 1
    return captured[0]


def _described(method: str, body: Any = None, query: dict[str, str] | None = None) -> str:
    text = body if body is None or isinstance(body, str) else json.dumps(body)
    return describe_validation_errors(_errors(method, text, query))


def test_a_valid_request_raises_nothing_to_describe() -> None:
    app, captured = _resolver()
    event = {
        "path": "/things",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"httpMethod": "POST", "path": "/things", "resourcePath": "/things"},
        "body": json.dumps({"name": "a"}),
        "isBase64Encoded": False,
    }
    assert app.resolve(event, NO_CONTEXT)["statusCode"] == 200
    assert captured == []


def test_a_missing_field_is_named() -> None:
    assert _described("POST", {"count": 2}) == "field 'name': Field required"


def test_a_value_of_the_wrong_type_is_named_with_what_was_expected() -> None:
    assert _described("POST", {"name": "a", "count": "many"}) == (
        "field 'count': Input should be a valid integer, unable to parse string as an integer"
    )


def test_an_extra_field_is_named() -> None:
    assert _described("POST", {"name": "a", "colour": "red"}) == "field 'colour': Extra inputs are not permitted"


def test_a_nested_location_is_joined_with_dots() -> None:
    assert _described("POST", {"name": "a", "place": {"floor": "top"}}) == (
        "field 'place.city': Field required; "
        "field 'place.floor': Input should be a valid integer, unable to parse string as an integer"
    )
    assert _described("POST", {"name": "a", "tags": ["ok", 7]}) == "field 'tags.1': Input should be a valid string"


def test_several_errors_are_all_told_in_order() -> None:
    assert _described("POST", {"name": "", "count": [], "extra": 1}) == (
        "field 'name': String should have at least 1 character; "
        "field 'count': Input should be a valid integer; "
        "field 'extra': Extra inputs are not permitted"
    )


def test_a_body_that_is_not_an_object_is_described_as_the_body() -> None:
    assert _described("POST", [1, 2]) == "body: Input should be a valid dictionary or object to extract fields from"


def test_invalid_json_says_to_send_a_json_object() -> None:
    errors = _errors("POST", '{"name": ')
    assert [error["type"] for error in errors] == ["json_invalid"]
    assert describe_validation_errors(errors) == (
        'the body is not valid JSON; send a JSON object such as {"name": "..."}'
    )


def test_a_query_parameter_is_named_as_one() -> None:
    assert (
        _described("GET", query={"page": "0"}) == "query parameter 'page': Input should be greater than or equal to 1"
    )
    assert _described("GET", query={"page": "x", "search": "toolong"}) == (
        "query parameter 'page': Input should be a valid integer, unable to parse string as an integer; "
        "query parameter 'search': String should have at most 5 characters"
    )


def test_shapes_with_parts_missing_still_make_a_sentence() -> None:
    assert describe_validation_errors([]) == "the request is not valid"
    assert describe_validation_errors([{}]) == "body: invalid"
    assert describe_validation_errors([{"loc": ("body",), "msg": "Input should be an object"}]) == (
        "body: Input should be an object"
    )
    assert describe_validation_errors([{"loc": ("path", "task_id")}]) == "path parameter 'task_id': invalid"
    assert describe_validation_errors([{"loc": ("body", "labels", 0), "msg": "too long"}]) == (
        "field 'labels.0': too long"
    )


def test_each_kind_of_domain_error_has_its_status_and_subclasses_inherit_it() -> None:
    class StillMissing(NotFound):
        pass

    assert [status_for(error) for error in (InvalidInput("x"), Unauthenticated("x"), NotFound("x"))] == [400, 401, 404]
    assert [status_for(error) for error in (Conflict("x"), TooLarge("x"), NotImplementedYet("x"))] == [409, 413, 501]
    assert status_for(StillMissing("x")) == 404
    assert status_for(KestrelError("x")) == 400  # any other user error is a bad request


def test_error_answers_carry_only_the_detail() -> None:
    response = error_response(409, 'version "2" is in use')
    assert (response.status_code, json.loads(str(response.body))) == (409, {"detail": 'version "2" is in use'})
    assert proxy_error(413, "too large") == {
        "statusCode": 413,
        "headers": {"Content-Type": "application/json"},
        "body": '{"detail": "too large"}',
        "isBase64Encoded": False,
    }
