"""Every classify answer carries ``status: {code, text}`` (errors keep ``detail`` too), and the
task may be named ``task`` (Ximilar's docs) or ``task_id`` (its client). No model needed here:
these are the refusals; tests/compat/test_ximilar_client.py classifies for real."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.http import Api

ONE = [{"_url": "https://example.com/cat.jpg"}]
OTHER = "5b3e7c9e-2f4e-4a43-9f0e-1c2d3e4f5a6b"


def _refused(api_server: Any, status: int, **call: Any) -> dict[str, Any]:
    answer = api_server.request("POST", "recognition/v2/classify/", **call)
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["status"] == {"code": status, "text": body["detail"]}, body
    return body


def test_the_task_may_be_named_task_or_task_id_but_not_two_ways(api_server: Any) -> None:
    task = Api(api_server.url, api_server.token).create_task("Untrained")
    for field in ("task", "task_id"):
        body = _refused(api_server, 400, json={field: task["id"], "records": ONE})
        assert "has no trained model yet" in body["detail"]
    body = _refused(api_server, 400, json={"task": task["id"], "task_id": OTHER, "records": ONE})
    assert "name different tasks" in body["detail"]
    same = _refused(api_server, 400, json={"task": task["id"], "task_id": task["id"], "records": ONE})
    assert "has no trained model yet" in same["detail"]  # the same task twice is one task
    assert "name the task" in _refused(api_server, 400, json={"records": ONE})["detail"]


@pytest.mark.parametrize(
    ("call", "status", "says"),
    [
        ({"json": {"task_id": OTHER, "records": ONE}}, 404, f"Task {OTHER} not found"),
        ({"json": {"task_id": OTHER}}, 400, "field 'records'"),
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"task_id": OTHER, "records": ONE, "verified": 1}}, 400, "'verified' is not supported"),
        ({"json": {"task_id": OTHER, "records": ONE, "version": 0}}, 400, "field 'version'"),
    ],
)
def test_every_refusal_has_a_status(api_server: Any, call: dict[str, Any], status: int, says: str) -> None:
    assert says in _refused(api_server, status, **call)["detail"]


def test_other_routes_keep_the_plain_error_shape(api_server: Any) -> None:
    answer = api_server.request("GET", f"recognition/v2/task/{OTHER}/")
    assert answer.status_code == 404 and answer.json() == {"detail": f"Task {OTHER} not found"}
