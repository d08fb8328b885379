"""Train requests: the rules, version numbers under concurrency, and the queue, on both runtimes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from kestrel.adapters.sqlite_jobs import SqliteTrainQueue
from kestrel.domain.entities import default_workspace_id
from tests.api.http import Api
from tests.flow.conftest import TrainableTask
from tests.photos import distinct_photos


def queued_requests(api_server: Any) -> list[dict[str, Any]]:
    """The train requests waiting in the runtime's queue (SQLite table or SQS)."""
    queue = api_server.ports.queue
    if isinstance(queue, SqliteTrainQueue):
        found = []
        while (received := queue.receive(lease=600)) is not None:
            found.append(received.request.to_message())
        return found
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=queue.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_refusal_names_each_short_label(api_server: Any) -> None:
    api = Api(api_server.url, api_server.token)
    task = api.create_task("Too small")
    cat, dog = api.create_label("cat"), api.create_label("dog")
    refused = api.call("POST", f"task/{task['id']}/train/")
    assert refused.status_code == 400 and "at least 2" in refused.json()["detail"]
    for label in (cat, dog):
        api.post(f"task/{task['id']}/add-label/", {"label_id": label["id"]})
    for data in distinct_photos(18, "chelsea", side=48):
        api.upload(data, labels=[cat["id"]])
    detail = api.call("POST", f"task/{task['id']}/train").json()["detail"]
    assert "'cat' has 18 images, 2 short" in detail and "'dog' has 0 images, 20 short" in detail
    assert api.get("model/", params={"task": task["id"]})["count"] == 0
    assert queued_requests(api_server) == []


def test_train_creates_the_next_version_waiting(api_server: Any, trainable: TrainableTask) -> None:
    api, task = trainable.api, trainable.task
    model = api.post(f"task/{task['id']}/train/", status=201)
    assert (model["version"], model["train_status"], model["task"]) == (1, "WAITING", task["id"])
    assert api.get(f"task/{task['id']}")["last_train_status"] == "WAITING"
    listed = api.get("model/", params={"task": task["id"]})
    assert [m["id"] for m in listed["results"]] == [model["id"]]
    assert queued_requests(api_server) == [
        {
            "owner_id": model_owner(api_server),
            "task_id": task["id"],
            "model_id": model["id"],
            "version": 1,
            "workspace": default_workspace_id(model_owner(api_server)),
        }
    ]


def model_owner(api_server: Any) -> str:
    from kestrel.store.accounts import authenticate

    return authenticate(api_server.ports.items, f"Token {api_server.token}")


def test_concurrent_train_requests_get_distinct_versions(api_server: Any, trainable: TrainableTask) -> None:
    task_id = trainable.task["id"]

    def train(_: int) -> dict[str, Any]:
        return Api(api_server.url, api_server.token).post(f"task/{task_id}/train/", status=201)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=4) as pool:
        models = list(pool.map(train, range(4)))
    assert sorted(m["version"] for m in models) == [1, 2, 3, 4]
    queued = queued_requests(api_server)
    assert sorted(request["version"] for request in queued) == [1, 2, 3, 4]
    assert len({request["model_id"] for request in queued}) == 4
