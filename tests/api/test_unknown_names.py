"""Nothing unknown is ignored: every route in the OpenAPI document, asked with a query parameter
or a body field it does not take, answers 400 naming it (before it looks anything up)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from kestrel.api.strict import ACCEPTED_AND_IGNORED, ACCEPTED_EVERYWHERE

UNKNOWN = "zz_not_a_kestrel_name"
SOME_ID = "5b3e7c9e-2f4e-4a43-9f0e-1c2d3e4f5a6b"


@pytest.fixture
def document(api_server: Any) -> dict[str, Any]:
    return api_server.request("GET", "recognition/v2/openapi.json", token=None).json()  # type: ignore[no-any-return]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            found.append(
                (method.upper(), path.replace("{", "").replace("}", "").replace("task_id", SOME_ID), operation)
            )
    return found


def _valid_body(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    """The request body's own example (so only the unknown name is wrong), {} when it has none."""
    content = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
    if content is None:
        return None
    ref = content["schema"].get("$ref", "")
    schema = document["components"]["schemas"].get(ref.split("/")[-1], {})
    examples = schema.get("examples") or [{}]
    return dict(examples[0])


def _concrete(path: str) -> str:
    for name in ("label_id", "image_id", "model_id"):
        path = path.replace(name, SOME_ID)
    return path


def test_every_route_refuses_an_unknown_query_parameter(api_server: Any, document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert len(operations) >= 25  # every route, not a sample
    for method, path, operation in operations:
        body = _valid_body(document, operation)
        answer = api_server.request(method, f"{_concrete(path)}?{UNKNOWN}=1", json=body)
        assert answer.status_code == 400, (method, path, answer.status_code, answer.text)
        assert f"'{UNKNOWN}' is not supported by this server" in answer.json()["detail"], (method, path)


def test_every_route_with_a_body_refuses_an_unknown_field(api_server: Any, document: dict[str, Any]) -> None:
    with_body = [(m, p, o) for m, p, o in _operations(document) if _valid_body(document, o) is not None]
    assert len(with_body) >= 12
    for method, path, operation in with_body:
        body = {**(_valid_body(document, operation) or {}), UNKNOWN: True}
        answer = api_server.request(method, _concrete(path), json=body)
        assert answer.status_code == 400, (method, path, answer.status_code, answer.text)
        assert f"'{UNKNOWN}' is not supported by this server" in answer.json()["detail"], (method, path)
        # The same field in a form body is refused the same way.
        form = api_server.request(method, _concrete(path), data={UNKNOWN: "1"})
        assert form.status_code == 400 and UNKNOWN in form.json()["detail"], (method, path, form.text)


def test_ximilar_names_kestrel_lacks_are_refused_with_advice(api_server: Any) -> None:
    for query, name in (
        ("verified=1", "verified"),
        ("real=true", "real"),
        (f"label_value_{SOME_ID}__gte=3", f"label_value_{SOME_ID}__gte"),
    ):
        answer = api_server.request("GET", f"recognition/v2/training-image/?{query}")
        detail = answer.json()["detail"]
        assert answer.status_code == 400 and f"'{name}' is not supported by this server: " in detail, detail
    image = api_server.request("GET", "recognition/v2/training-image/")
    assert image.status_code == 200
    update = api_server.request(
        "POST", "recognition/v2/training-image/update", json={"images": [SOME_ID], "mark-real": True}
    )
    assert update.status_code == 400 and "'mark-real' is not supported" in update.json()["detail"]


def test_the_documented_exceptions_are_accepted(api_server: Any) -> None:
    for name in (*ACCEPTED_EVERYWHERE, *ACCEPTED_AND_IGNORED):
        value = "Default" if name == "workspace" else "x"  # workspace selects one: the default one exists
        listing = api_server.request("GET", f"recognition/v2/task/?{name}={value}")
        assert listing.status_code == 200, (name, listing.text)
        body_value = value if name == "workspace" else True
        created = api_server.request("POST", "recognition/v2/label/", json={"name": f"with {name}", name: body_value})
        assert created.status_code == 201, (name, created.text)


def test_every_2xx_answer_is_described_field_by_field(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation["responses"].items():
                if not code.startswith("2") or code == "204":
                    continue
                schema = answer["content"]["application/json"]["schema"]
                name = schema["$ref"].split("/")[-1]
                described = schemas[name]
                if described.get("type") == "array":  # a plain list (workspaces, as Ximilar answers)
                    described = schemas[described["items"]["$ref"].split("/")[-1]]
                assert described.get("properties"), (method, path, code, name)
    classify = document["paths"]["/recognition/v2/classify"]["post"]["responses"]
    record = schemas["RecordOut"]["properties"]
    assert {"_status", "best_label", "labels", "_stored_image_id"} <= set(record)
    assert schemas[classify["400"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]][
        "properties"
    ].keys() >= {"detail", "status"}


def test_no_route_needs_requests_to_know_the_names(api_server: Any) -> None:
    """The check happens on the server: a bare HTTP client sees it too (requests, no Kestrel code)."""
    answer = requests.get(
        f"{api_server.url}recognition/v2/label/?colour=red",
        headers={"Authorization": f"Token {api_server.token}"},
        timeout=30,
    )
    assert answer.status_code == 400 and "'colour'" in answer.json()["detail"]


def test_the_reference_keeps_its_own_parameters(api_server: Any) -> None:
    """Swagger UI's ``?format=json`` is Powertools' own, on a route outside the API's document."""
    answer = api_server.request("GET", "recognition/v2/docs/?format=json", token=None)
    assert answer.status_code == 200 and answer.json()["openapi"].startswith("3.")
