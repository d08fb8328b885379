"""Schemathesis against the OpenAPI document the local gateway serves: every operation,
authenticated; no answer is a 5xx and every answer matches the schema where one is declared.

The operations are parametrised at collection time from the document the API code builds, and
every test first checks that the running gateway serves exactly that document. Each operation
gets a fresh server seeded with one task, label and image of the token's owner; half of the
generated cases use those real ids so the fuzzer gets past the 404s and reaches the handlers'
validation and write paths.

Short profile: 15 examples per operation; ``KESTREL_SOAK=1``: 200.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from kestrel.api.openapi import document
from tests.api.http import Api
from tests.conftest import RunningServer
from tests.photos import photo
from tests.soak import SOAK, examples, record

OPENAPI_PATH = "recognition/v2/openapi.json"
MAX_EXAMPLES = examples(short=15, soak=200)


@dataclass
class Target:
    server: RunningServer
    ids: dict[str, str]  # path parameter name -> a real id of the token's owner
    counter: Iterator[int]


@pytest.fixture
def target(local_server: RunningServer) -> Target:
    api = Api(local_server.url, local_server.token)
    task = api.create_task("fuzzed task")
    label = api.create_label("fuzzed label")
    api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    image = api.upload(photo("chelsea", 64), labels=[label["id"]])
    ids = {"task_id": task["id"], "label_id": label["id"], "image_id": image["id"]}
    return Target(local_server, ids, itertools.count())


@pytest.fixture
def fuzz_target(target: Target) -> Target:
    # The operations below come from the same code that serves the document (schemathesis' lazy
    # ``from_fixture`` loader does not run under pytest 9); prove that it is the served document.
    served = target.server.request("GET", OPENAPI_PATH, timeout=30)
    assert served.status_code == 200, served.text
    assert served.json() == DOCUMENT, "the served OpenAPI document differs from the one being fuzzed"
    return target


DOCUMENT: dict[str, Any] = json.loads(document())
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=not SOAK,  # the short profile in make test is reproducible; soak explores
)
def test_no_server_error_and_schema_conformance(case: schemathesis.Case, fuzz_target: Target) -> None:
    if case.path_parameters and next(fuzz_target.counter) % 2 == 0:
        for name in case.path_parameters:
            if name in fuzz_target.ids:
                case.path_parameters[name] = fuzz_target.ids[name]
    record("fuzz", schemathesis_cases=1, requests=2)
    response = case.call(
        base_url=fuzz_target.server.url.rstrip("/"),
        headers={"Authorization": f"Token {fuzz_target.server.token}"},
        timeout=60,
    )
    checks = [not_a_server_error, response_schema_conformance]
    if response.status_code == 204:
        assert response.content == b""  # declared without a body; nothing to parse
        checks = [not_a_server_error]
    if checks:
        case.validate_response(response, checks=checks)
    # The server keeps serving after whatever it was sent.
    alive = fuzz_target.server.request("GET", "recognition/v2/task/", timeout=30)
    assert alive.status_code == 200, alive.text


BODY_OPERATIONS = [
    ("POST", "task/"),
    ("POST", "label/"),
    ("POST", "training-image/"),
    ("POST", "training-image/update"),
    ("POST", "training-image/upload-url/"),
    ("POST", "classify/"),
    ("PATCH", "task/{task_id}/"),
]


def test_undeclared_content_type_is_415(target: Target) -> None:
    for method, path in BODY_OPERATIONS:
        url = "recognition/v2/" + path.format(**target.ids)
        response = target.server.request(
            method, url, data='{"name": "x"}', headers={"Content-Type": "text/plain"}, timeout=30
        )
        assert response.status_code == 415, f"{method} {path}: {response.status_code} {response.text}"
        assert "detail" in response.json()


def test_204_is_documented_without_a_body() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "204" in operation.get("responses", {}):
                assert "content" not in operation["responses"]["204"], f"{method.upper()} {path}"


def test_task_type_null_is_refused_or_ignored(target: Target) -> None:
    for method in ("PATCH", "PUT"):
        response = target.server.request(
            method, f"recognition/v2/task/{target.ids['task_id']}/", json={"name": "n", "type": None}, timeout=30
        )
        assert response.status_code in (200, 400), f"{method}: {response.status_code} {response.text}"
