"""Code written for Ximilar runs unchanged: the unmodified ximilar-client (a dev dependency) on
both runtimes. What used to go silently wrong now works, or fails loudly as Ximilar would."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
import requests
from ximilar.client import RecognitionClient
from ximilar.client.exceptions import XimilarClientException

from tests.compat.conftest import CompatServer, in_background
from tests.photos import distinct_photos, photo

POLL_LIMIT_SECONDS = 600  # a guard against a hung training, not a speed requirement


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_download_gives_each_image_its_own_file_with_its_bytes(compat: CompatServer, tmp_path: Path) -> None:
    client = compat.client()
    sent = distinct_photos(3, "chelsea", side=80)
    images, status = client.upload_images([{"_base64": _b64(data)} for data in sent])
    assert status["status"] == "OK" and len(images) == 3
    folder = tmp_path / "export"
    folder.mkdir()
    for image, data in zip(images, sent, strict=True):
        assert image.img_path.split("?")[0].endswith(f"/{image.id}.jpg")
        assert image.thumb_img_path.split("?")[0].endswith(f"/{image.id}_thumb.jpg")
        path = Path(image.download(destination=str(folder)))
        assert path.name == f"{image.id}.jpg"
        assert path.read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{image.id}.jpg" for image in images)


def test_an_unsupported_filter_is_refused_not_ignored(compat: CompatServer) -> None:
    client = compat.client()
    client.upload_images([{"_base64": _b64(photo("coffee", 64))}])
    with pytest.raises(KeyError):  # the client reads 'results' from the 400 answer
        client.get_training_images(verification=1)
    answer = compat.server.request("GET", "recognition/v2/training-image/?page=1&verified=1")
    assert answer.status_code == 400 and "'verified' is not supported by this server" in answer.json()["detail"]

    label, _ = client.create_label("cat")
    with pytest.raises(KeyError):
        label.get_training_images(value=3)  # label_value_<id>__gte: Kestrel's labels carry no values
    # mark-real: refused by name, and nothing changed.
    image = client.get_training_images()[0][0]
    refused = client.modify_images(images=[image.id], real=True)
    assert "'mark-real' is not supported by this server" in refused["detail"]


@pytest.mark.slow  # trains a real model
def test_train_poll_classify_and_store_images(compat: CompatServer) -> None:
    client = compat.client()
    task, _ = client.create_task("Cats and coffee")
    labels = {}
    for name, sample in (("cat", "chelsea"), ("coffee", "coffee")):
        label, _ = client.create_label(name)
        task.add_label(label.id)
        labels[name] = label
        records = [{"_base64": _b64(data), "labels": [label.id]} for data in distinct_photos(20, sample, side=64)]
        uploaded, status = client.upload_images(records)
        assert status["status"] == "OK" and len(uploaded) == 20

    model = task.train()
    assert model["train_status"] == "WAITING"
    worker, errors = in_background(lambda: compat.finish_training(model["id"]))
    seen = []
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while time.monotonic() < deadline:
        status = client.get_task(task.id)[0].last_train_status  # what Ximilar's train_workspace.py polls
        seen.append(status)
        if status in ("TRAINED", "FAILED"):
            break
        time.sleep(0.2)
    worker.join(POLL_LIMIT_SECONDS)
    assert not errors, errors
    assert seen[-1] == "TRAINED", seen
    assert set(seen) <= {"WAITING", "IN_TRAINING", "TRAINED"}
    assert client.get_model(model["id"])[0].train_status == "TRAINED"

    task = client.get_task(task.id)[0]
    # noresize: the client would re-encode the image with OpenCV, which is not installed here.
    cat = {"_base64": _b64(photo("chelsea", 90)).decode(), "noresize": True, "my_id": "c-1"}
    result = task.classify([dict(cat)])
    assert result["status"] == {"code": 200, "text": "OK"}
    assert result["records"][0]["best_label"]["name"] == "cat" and result["records"][0]["my_id"] == "c-1"

    with pytest.raises(XimilarClientException) as refused:
        task.classify([dict(cat)], version=99)
    assert refused.value.code == 404 and "version 99" in str(refused.value)

    before = client.get_training_images()[2]["count"]
    coffee = {"_base64": _b64(photo("coffee", 90)).decode(), "noresize": True}
    stored = client.classify_on_task([dict(cat), dict(coffee)], task_id=task.id, store_images=True)
    ids = [record["_stored_image_id"] for record in stored["records"]]
    assert all(ids) and len(set(ids)) == 2
    again = client.classify_on_task([dict(cat)], task_id=task.id, store_images=True)
    assert again["records"][0]["_stored_image_id"] == ids[0]  # the same bytes keep one image
    assert client.get_training_images()[2]["count"] == before + 2
    kept, _ = client.get_image(ids[1])
    assert kept.get_labels()[0] == []  # unlabelled, for review
    prediction = kept.get_meta_data()["kestrel_prediction"]
    assert prediction["version"] == 1 and prediction["model_id"] == model["id"]
    assert prediction["best_label"]["name"] == "coffee" and 0.5 < prediction["prob"] <= 1.0


def test_the_client_needs_no_call_to_ximilar_with_resource_name_none(
    compat: CompatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make run`` prints http://127.0.0.1:8000/: without "localhost" in the endpoint the client
    posts the token to api.ximilar.com, unless resource_name=None."""
    calls: list[str] = []
    real_post = requests.post

    def watched(url: str, *args: object, **kwargs: object) -> requests.Response:
        calls.append(url)
        return real_post(url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(requests, "post", watched)
    endpoint = compat.server.url.replace("localhost", "127.0.0.1")
    client = RecognitionClient(compat.server.token, endpoint=endpoint, resource_name=None)
    task, _ = client.create_task("No leak")
    assert task is not None and all(url.startswith(endpoint) for url in calls), calls
