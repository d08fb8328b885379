"""The mislabelled-image finder end to end, on both runtimes: a cat/coffee task in which five
photos carry the other label (three coffee photos labelled cat, two cat photos labelled coffee)
is trained for real; the version's `possibly_mislabelled` lists those five (with the label they
really have as the suggestion, their thumbnails and their current labels), relabelling one
through the label API shows in `current_labels`, and the next training learns the new label.

Local: the worker runs the job. AWS (DynamoDB + S3 under moto): the launcher Lambda writes the
manifest to S3, the job's own library (`kestrel.training.job.train`, what the SageMaker
container runs) trains from the images in S3, and the finisher Lambda reads its model.tar.gz."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from kestrel.flow.launch import manifest_key
from kestrel.local.worker import LocalWorker
from kestrel.training.job import train
from tests.api.http import Api
from tests.conftest import RunningServer, aws_ports, running_server
from tests.flow.artefacts import CARD_FILE, MODEL_FILE, completed_event, pack
from tests.photos import distinct_photos

pytestmark = pytest.mark.slow


@dataclass
class SwappedTask:
    task: dict[str, Any]
    labels: dict[str, str]  # name -> id
    swapped: dict[str, str]  # image id -> the label (name) it really has


def swapped_task(api: Api) -> SwappedTask:
    task = api.create_task("Some labels swapped")
    labels = {}
    for name in ("cat", "coffee"):
        labels[name] = api.create_label(name)["id"]
        api.post(f"task/{task['id']}/add-label/", {"label_id": labels[name]})
    cats, coffees = distinct_photos(22, "chelsea", side=64), distinct_photos(23, "coffee", side=64)
    for data in cats[:20]:
        api.upload(data, labels=[labels["cat"]])
    for data in coffees[:20]:
        api.upload(data, labels=[labels["coffee"]])
    swapped = {api.upload(data, labels=[labels["cat"]])["id"]: "coffee" for data in coffees[20:]}
    swapped.update({api.upload(data, labels=[labels["coffee"]])["id"]: "cat" for data in cats[20:]})
    return SwappedTask(task, labels, swapped)


def check_found(api: Api, model: dict[str, Any], task: SwappedTask) -> list[dict[str, Any]]:
    """The finder lists every swapped image, suggests the label it really has, and little else."""
    assert model["train_status"] == "TRAINED", model
    listed = model["possibly_mislabelled"]
    found = {entry["image_id"] for entry in listed}
    assert found >= set(task.swapped), f"missed {set(task.swapped) - found}: {listed}"
    assert len(found - set(task.swapped)) <= 1, f"false alarms: {found - set(task.swapped)}"
    assert model["possibly_mislabelled_total"] == len(listed)
    assert [entry["margin"] for entry in listed] == sorted((entry["margin"] for entry in listed), reverse=True)
    for entry in listed:
        assert entry["margin"] >= 0.5
        if entry["image_id"] in task.swapped:
            really = task.labels[task.swapped[entry["image_id"]]]
            assert entry["suggested"] == [really]
            assert entry["labels"] == entry["current_labels"] != [really]
            assert entry["probs"][really] >= 0.75
        assert f"{entry['image_id']}_thumb.jpg" in entry["thumb_img_path"]
        if "X-Amz-Signature" not in entry["thumb_img_path"]:  # the local server serves it (S3's is presigned)
            thumb = requests.get(entry["thumb_img_path"], timeout=10)
            assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"  # a JPEG
    # The card keeps them too; a listing of versions carries them without thumbnails.
    card = api.get(f"model/{model['id']}/card/")
    assert [entry["image_id"] for entry in card["possibly_mislabelled"]] == [entry["image_id"] for entry in listed]
    [listed_version] = api.get(f"model/?task={task.task['id']}")["results"]
    assert all(entry["thumb_img_path"] is None for entry in listed_version["possibly_mislabelled"])
    return listed  # type: ignore[no-any-return]


def relabel_one(api: Api, model: dict[str, Any], task: SwappedTask) -> str:
    """Relabel the first swapped image as the console does: add the suggestion, remove the old."""
    entry = next(entry for entry in model["possibly_mislabelled"] if entry["image_id"] in task.swapped)
    image_id = entry["image_id"]
    api.post(f"training-image/{image_id}/add-label/", {"label_id": entry["suggested"][0]})
    api.post(f"training-image/{image_id}/remove-label/", {"label_id": entry["labels"][0]})
    again = api.get(f"model/{model['id']}")
    [seen] = [e for e in again["possibly_mislabelled"] if e["image_id"] == image_id]
    assert seen["current_labels"] == entry["suggested"] and seen["labels"] == entry["labels"]
    return str(image_id)


def test_swapped_labels_are_found_and_relabelled_locally(local_server: RunningServer) -> None:
    api = Api(local_server.url, local_server.token)
    task = swapped_task(api)

    def trained() -> dict[str, Any]:
        created = api.post(f"task/{task.task['id']}/train/", status=201)
        LocalWorker(local_server.ports, poll_seconds=0.1).run_until_idle()
        return api.get(f"model/{created['id']}")  # type: ignore[no-any-return]

    model = trained()
    assert set(model["metrics"]["phase_seconds"]) >= {"mislabelled"}
    check_found(api, model, task)
    fixed = relabel_one(api, model, task)
    # The next version learns the new label: the image is no longer disputed.
    again = trained()
    assert fixed not in {entry["image_id"] for entry in again["possibly_mislabelled"]}
    assert {entry["image_id"] for entry in again["possibly_mislabelled"]} >= set(task.swapped) - {fixed}


@pytest.mark.aws
def test_swapped_labels_are_found_and_relabelled_on_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.flow.test_aws_flow import deliver_artefact, receive_all, run_finisher, run_launcher, sqs_record

    with aws_ports(monkeypatch, tmp_path / "data") as ports, running_server(ports, "aws") as server:
        api = Api(server.url, server.token)
        task = swapped_task(api)
        created = api.post(f"task/{task.task['id']}/train/", status=201)
        [message] = receive_all(server)
        assert run_launcher(sqs_record(message)) == {"batchItemFailures": []}
        # What the SageMaker container does: train from the manifest and the images in S3.
        manifest = json.loads(ports.blobs.get(manifest_key(created["id"])))
        result = train(manifest, ports.blobs, lambda _: None)
        archive = pack({MODEL_FILE: result.model, CARD_FILE: json.dumps(result.card).encode()})
        deliver_artefact(server, created["id"], archive)
        run_finisher(completed_event(server, created["id"]))
        model = api.get(f"model/{created['id']}")
        listed = check_found(api, model, task)
        assert all("X-Amz-Signature" in entry["thumb_img_path"] for entry in listed)  # S3 presigned URLs
        relabel_one(api, model, task)
