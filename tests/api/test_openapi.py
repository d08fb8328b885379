"""The served OpenAPI document is valid, documents every route, and matches docs/openapi.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


@pytest.fixture
def served(local_server: Any) -> dict[str, Any]:
    response = requests.get(f"{local_server.url}recognition/v2/openapi.json", timeout=10)  # no token needed
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_document_is_valid_and_complete(served: dict[str, Any]) -> None:
    validate(served)
    paths = served["paths"]
    for path in (
        "/recognition/v2/task",
        "/recognition/v2/task/{task_id}",
        "/recognition/v2/task/{task_id}/add-label",
        "/recognition/v2/label",
        "/recognition/v2/label/{label_id}",
        "/recognition/v2/training-image",
        "/recognition/v2/training-image/{image_id}",
        "/recognition/v2/training-image/update",
        "/recognition/v2/training-image/upload-url",
        "/recognition/v2/model",
        "/recognition/v2/model/{model_id}",
        "/recognition/v2/task/{task_id}/similar",
    ):
        assert path in paths, path
    create = paths["/recognition/v2/task"]["post"]
    assert "201" in create["responses"] and "requestBody" in create
    assert served["components"]["securitySchemes"]["token"]["in"] == "header"
    examples = [schema for schema in served["components"]["schemas"].values() if "examples" in schema]
    assert len(examples) >= 4


def test_committed_copy_matches(served: dict[str, Any]) -> None:
    committed = json.loads(COMMITTED.read_text())
    assert served == committed, (
        "docs/openapi.json is out of date: regenerate it with "
        "`.venv/bin/python -m kestrel.api.openapi > docs/openapi.json`"
    )


def test_swagger_ui_loads(local_server: Any) -> None:
    for path in ("recognition/v2/docs", "recognition/v2/docs/"):
        page = requests.get(f"{local_server.url}{path}", timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
        assert "SwaggerUIBundle" in page.text and "Kestrel recognition API" in page.text


def _event(stage: str, path: str) -> dict[str, Any]:
    """A GET as API Gateway hands it to the api Lambda: ``path`` without the stage, and
    ``requestContext.path`` as the client sent it (with ``/<stage>`` on an execute-api URL)."""
    from kestrel.local.events import event_from_wsgi

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "HTTP_HOST": "api.example.com"}
    event = event_from_wsgi(environ, b"")
    event["requestContext"]["stage"] = stage
    event["requestContext"]["path"] = f"/{stage}{path}" if stage != "local" else path
    return event


@pytest.mark.parametrize(("stage", "server"), [("prod", "/prod"), ("staging-2", "/staging-2"), ("local", "/")])
def test_servers_carry_the_stage_prefix_on_aws(stage: str, server: str) -> None:
    """Swagger's "Try it out" resolves the server against the page's host: on an execute-api URL
    the stage must be in it, or every call misses (403 Missing Authentication Token)."""
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from kestrel.api.app import build_app

    app = build_app(Logger(service="kestrel-test-openapi"))
    context = LambdaContext()
    document = json.loads(app.resolve(_event(stage, "/recognition/v2/openapi.json"), context)["body"])
    assert document["servers"] == [{"url": server}]
    page = app.resolve(_event(stage, "/recognition/v2/docs"), context)["body"]
    assert f'"url": "{server}"' in page


def test_local_server_and_committed_copy_use_the_root(served: dict[str, Any]) -> None:
    assert served["servers"] == [{"url": "/"}]
    assert json.loads(COMMITTED.read_text())["servers"] == [{"url": "/"}]
