"""The review loop with a real model, on both runtimes: classify with store_images → the review
queue lists the stored images most uncertain first (the margins of classify's own answer) → a
person labels the most uncertain one → the next training takes it.

Locally the next version is really trained (its card counts the image); on AWS the launcher's
manifest in S3 (what the SageMaker job trains on) lists it, after a version 1 finished from a
real artefact (``tests.flow.artefacts``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import kestrel.usecases.classify as classify_usecase
from kestrel.local.worker import LocalWorker
from tests.api.http import Api
from tests.conftest import aws_ports, running_server
from tests.flow.artefacts import TrainedArtefact, completed_event, trained_once
from tests.flow.conftest import make_trainable_task, trained_server
from tests.flow.test_aws_flow import (
    deliver_artefact,
    receive_all,
    run_finisher,
    run_launcher,
    s3_object,
    sqs_record,
    train_and_launch,
)
from tests.photos import photo

pytestmark = pytest.mark.slow

SAMPLES = ("rocket", "astronaut", "chelsea", "coffee", "motorcycle")


def _classify_and_store(api: Api, task_id: str) -> list[dict[str, Any]]:
    records = [{"_base64": base64.b64encode(photo(name, 200)).decode(), "name": name} for name in SAMPLES]
    answer = api.post("classify/", {"task_id": task_id, "records": records, "store_images": True})
    assert all(record["_status"]["code"] == 200 for record in answer["records"])
    return list(answer["records"])


def _check_queue(api: Api, task_id: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The queue holds the stored images, ordered by p1 - p2 of classify's answer."""
    margin = {r["_stored_image_id"]: r["labels"][0]["prob"] - r["labels"][1]["prob"] for r in records}
    queue = api.get(f"task/{task_id}/review/")
    assert queue["count"] == len(SAMPLES)
    shown = [item["image"]["id"] for item in queue["results"]]
    assert shown == sorted(margin, key=lambda image_id: (round(margin[image_id], 6), image_id))
    by_image = {record["_stored_image_id"]: record for record in records}
    for item in queue["results"]:
        record = by_image[item["image"]["id"]]
        assert item["uncertainty"] == pytest.approx(margin[item["image"]["id"]], abs=2e-6)
        assert item["prediction"]["version"] == 1
        assert item["prediction"]["labels"] == record["labels"]
        assert item["suggestion"] == [record["best_label"]["id"]]
    return list(queue["results"])


def test_local_loop_trains_the_reviewed_image(tmp_path: Path) -> None:
    with trained_server(tmp_path / "data") as (server, trainable):
        api, task_id = trainable.api, trainable.task["id"]
        queue = _check_queue(api, task_id, _classify_and_store(api, task_id))
        first = queue[0]["image"]["id"]
        cat, _ = trainable.labels
        api.post(f"task/{task_id}/review/{first}/", {"label_ids": [cat["id"]]})
        assert api.get(f"task/{task_id}/review/summary/")["reviewed_since_last_version"] == 1

        model = api.post(f"task/{task_id}/train/", status=201)
        LocalWorker(server.ports).run_until_idle()
        trained = api.get(f"model/{model['id']}/")
        assert trained["train_status"] == "TRAINED"
        counts = trained["metrics"]["counts"]
        assert counts["images_train"] + counts["images_test"] == 41  # 40 uploaded + the reviewed one
        assert api.get(f"task/{task_id}/review/summary/")["reviewed_since_last_version"] == 0
        assert api.get(f"task/{task_id}/review/")["count"] == len(SAMPLES) - 1


@pytest.fixture(scope="module")
def artefact(tmp_path_factory: pytest.TempPathFactory) -> TrainedArtefact:
    return trained_once(tmp_path_factory)


@pytest.mark.aws
def test_aws_loop_puts_the_reviewed_image_in_the_next_manifest(
    artefact: TrainedArtefact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(classify_usecase, "_serving", None)  # nothing loaded yet in this process
    with aws_ports(monkeypatch, tmp_path / "data") as ports, running_server(ports, "aws") as server:
        launched = train_and_launch(server, make_trainable_task(Api(server.url, server.token)))
        deliver_artefact(server, launched.model["id"], artefact.archive_for(launched.model, launched.trainable.labels))
        run_finisher(completed_event(server, launched.model["id"]))
        api, task_id = launched.api, launched.task_id

        queue = _check_queue(api, task_id, _classify_and_store(api, task_id))
        first = queue[0]["image"]["id"]
        _, coffee = launched.trainable.labels
        api.post(f"task/{task_id}/review/{first}/", {"label_ids": [coffee["id"]]})
        api.post(f"task/{task_id}/review/{queue[1]['image']['id']}/", {"skip": True})

        model = api.post(f"task/{task_id}/train/", status=201)
        [message] = receive_all(server)
        assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
        manifest = json.loads(s3_object(f"jobs/{model['id']}/manifest.json"))
        labels = {image["id"]: image["labels"] for image in manifest["images"]}
        assert labels[first] == [coffee["id"]] and queue[1]["image"]["id"] not in labels
        assert len(labels) == 41
