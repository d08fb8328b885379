"""task/{id}/similar/ on both runtimes, with a real trained model and the descriptors its training
stored: a training image finds itself first, a new photo finds training images of its label,
deleted images are left out, later images can be asked about, and bad input is a clear 4xx."""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kestrel.local.worker import LocalWorker, pack_model_dir
from kestrel.store.lifecycle import build_manifest, find_job
from kestrel.store.version_files import CARD_FILE, DESCRIPTORS_FILE, MODEL_FILE
from kestrel.training.job import train
from tests.api.http import Api
from tests.conftest import RunningServer, aws_ports, build_ports, local_settings, running_server
from tests.flow.conftest import TrainableTask, make_trainable_task
from tests.photos import photo

pytestmark = pytest.mark.slow


def _train_on_aws(server: RunningServer, trainable: TrainableTask) -> None:
    """The AWS flow with the real training job run at the library level on S3 (moto runs no
    SageMaker job): train request -> SQS -> launcher -> job -> model.tar.gz in S3 -> finisher."""
    from tests.flow.artefacts import completed_event
    from tests.flow.test_aws_flow import deliver_artefact, run_finisher, train_and_launch

    launched = train_and_launch(server, trainable)
    manifest = build_manifest(server.ports.items, find_job(server.ports.items, launched.model["id"]))
    result = train(manifest, server.ports.blobs, say=lambda _: None)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder)
        (model_dir / MODEL_FILE).write_bytes(result.model)
        (model_dir / CARD_FILE).write_text(json.dumps(result.card))
        (model_dir / DESCRIPTORS_FILE).write_bytes(result.descriptors)
        deliver_artefact(server, launched.model["id"], pack_model_dir(model_dir))
    run_finisher(completed_event(server, launched.model["id"]))


@pytest.fixture(scope="module", params=["local", pytest.param("aws", marks=pytest.mark.aws)])
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainableTask]:
    """A cat/coffee task (20 crops of each sample photo) trained on the runtime, version 1."""
    data_dir = tmp_path_factory.mktemp("similar") / "data"
    if request.param == "local":
        ports = build_ports(local_settings(data_dir))
        with running_server(ports, "local") as server:
            trainable = make_trainable_task(Api(server.url, server.token))
            trainable.api.post(f"task/{trainable.task['id']}/train/", status=201)
            LocalWorker(ports).run_until_idle()
            yield trainable
        return
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        aws_ports(monkeypatch, data_dir) as ports,
        running_server(ports, "aws") as server,
    ):
        trainable = make_trainable_task(Api(server.url, server.token))
        _train_on_aws(server, trainable)
        yield trainable


def _similar(trainable: TrainableTask, body: dict[str, Any], status: int = 200) -> Any:
    return trainable.api.post(f"task/{trainable.task['id']}/similar/", body, status=status)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _label_names(neighbour: dict[str, Any]) -> list[str]:
    return [label["name"] for label in neighbour["labels"]]


def _images_of(trainable: TrainableTask, label: dict[str, Any]) -> list[dict[str, Any]]:
    return list(trainable.api.get(f"training-image/?labels={label['id']}&page_size=100")["results"])


def test_a_training_image_finds_itself_first(trained: TrainableTask) -> None:
    cat, _ = trained.labels
    image = _images_of(trained, cat)[0]
    answer = _similar(trained, {"records": [{"training_image_id": image["id"], "mine": 7}], "k": 5})
    assert answer["version"] == 1 and answer["indexed_images"] == 40 and answer["status"]["code"] == 200
    [record] = answer["records"]
    assert record["_status"] == {"code": 200, "text": "OK"} and record["mine"] == 7  # echoed
    found = record["similar"]
    assert len(found) == 5
    assert found[0]["id"] == image["id"] and found[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert [n["similarity"] for n in found] == sorted((n["similarity"] for n in found), reverse=True)
    assert all(_label_names(n) == ["cat"] for n in found)  # crops of the same photo
    assert found[0]["thumb_img_path"].split("?")[0].endswith(f"{image['id']}_thumb.jpg")
    assert trained.api.session.get(found[0]["thumb_img_path"]).status_code == 200  # a working URL


def test_a_new_photo_finds_training_images_of_its_label(trained: TrainableTask) -> None:
    records = [{"_base64": _b64(photo("chelsea", 300))}, {"_base64": _b64(photo("coffee", 300))}]
    answer = _similar(trained, {"records": records})
    cat_like, coffee_like = (record["similar"] for record in answer["records"])
    assert len(cat_like) == len(coffee_like) == 10  # k's default
    assert [_label_names(n) for n in cat_like[:5]] == [["cat"]] * 5
    assert [_label_names(n) for n in coffee_like[:5]] == [["coffee"]] * 5
    assert all(0.0 < n["similarity"] < 0.999 for n in cat_like)  # near, not the same picture
    assert "_base64" not in answer["records"][0]  # the bytes are not sent back


def test_k_bounds_the_answer_and_the_index_bounds_k(trained: TrainableTask) -> None:
    record = {"_base64": _b64(photo("coffee", 200))}
    assert len(_similar(trained, {"records": [record], "k": 1})["records"][0]["similar"]) == 1
    everything = _similar(trained, {"records": [record], "k": 100})["records"][0]["similar"]
    assert 39 <= len(everything) <= 40  # every indexed image that still exists (one test deletes one)


def test_a_deleted_image_is_left_out(trained: TrainableTask) -> None:
    _, coffee = trained.labels
    image = _images_of(trained, coffee)[-1]
    before = _similar(trained, {"records": [{"training_image_id": image["id"]}], "k": 3})["records"][0]["similar"]
    assert before[0]["id"] == image["id"]
    trained.api.ok("DELETE", f"training-image/{image['id']}/", status=204)
    after = _similar(trained, {"records": [{"_base64": _b64(photo("coffee", 300))}], "k": 40})["records"][0]
    assert image["id"] not in [n["id"] for n in after["similar"]] and len(after["similar"]) == 39
    gone = _similar(trained, {"records": [{"training_image_id": image["id"]}]})["records"][0]
    assert gone["_status"]["code"] == 404 and image["id"] in gone["_status"]["text"] and "similar" not in gone


def test_an_image_added_after_training_can_be_asked_about_but_is_not_found(trained: TrainableTask) -> None:
    added = trained.api.upload(photo("chelsea", 240))  # unlabelled, not in version 1's index
    answer = _similar(trained, {"records": [{"training_image_id": added["id"]}], "k": 40})
    found = answer["records"][0]["similar"]
    assert added["id"] not in [n["id"] for n in found]
    assert [_label_names(n) for n in found[:5]] == [["cat"]] * 5


def test_each_bad_record_gets_its_own_status(trained: TrainableTask) -> None:
    records = [
        {"_base64": _b64(b"not an image"), "n": 1},
        {"training_image_id": "no-such-image", "n": 2},
        {"name": "nothing to search with", "n": 3},
        {"training_image_id": 12, "n": 4},
        {"_base64": _b64(photo("chelsea", 200)), "n": 5},
    ]
    answer = _similar(trained, {"records": records, "k": 2})
    statuses = [(r["n"], r["_status"]["code"]) for r in answer["records"]]
    assert statuses == [(1, 400), (2, 404), (3, 400), (4, 400), (5, 200)]
    texts = [r["_status"]["text"] for r in answer["records"]]
    assert "not a usable image" in texts[0] and "training_image_id" in texts[2]
    assert all("similar" not in r for r in answer["records"][:4]) and len(answer["records"][4]["similar"]) == 2


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"records": []}, "1 to 10"),
        ({"records": [{"_url": "https://example.com/a.jpg"}] * 11}, "1 to 10"),
        ({"records": [{"training_image_id": "x"}], "k": 0}, "k"),
        ({"records": [{"training_image_id": "x"}], "k": 101}, "k"),
        ({"records": [{"training_image_id": "x"}], "version": 0}, "version"),
        ({"records": [{"training_image_id": "x"}], "top": 3}, "'top'"),
        ({"records": [{"training_image_id": "x", "_base64": "AAAA"}]}, "not both"),
    ],
)
def test_bad_requests_are_refused_with_what_is_wrong(trained: TrainableTask, body: dict[str, Any], detail: str) -> None:
    answer = _similar(trained, body, status=400)
    assert detail in answer["detail"]


def test_versions_and_tasks_without_a_trained_model(trained: TrainableTask) -> None:
    missing = _similar(trained, {"records": [{"training_image_id": "x"}], "version": 9}, status=404)
    assert "9" in missing["detail"]
    untrained = trained.api.create_task("Never trained")
    answer = trained.api.post(f"task/{untrained['id']}/similar/", {"records": [{"training_image_id": "x"}]}, status=400)
    assert "no trained model yet" in answer["detail"]
    assert "not found" in trained.api.post("task/no-such-task/similar/", {"records": [{}]}, status=404)["detail"]
