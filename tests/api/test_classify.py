"""classify/ with a real trained model: formats, colour modes, bad records, URLs, versions, export."""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from tests.api.http import Api
from tests.conftest import use_fetch_settings
from tests.flow.conftest import TrainableTask, trained_server
from tests.image_server import ImageHandler
from tests.photos import encode, photo, sample

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, TrainableTask]]:
    with trained_server(tmp_path_factory.mktemp("classify") / "data") as trained_task:
        yield trained_task


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _classify(trainable: TrainableTask, records: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return trainable.api.post("classify/", {"task_id": trainable.task["id"], "records": records, **extra})  # type: ignore[no-any-return]


def _variants() -> dict[str, bytes]:
    """The same cat photo in every accepted format and colour mode."""
    cat = sample("chelsea").copy()
    cat.thumbnail((200, 200))
    rgba = cat.convert("RGBA")
    rgba.putalpha(200)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to display
    rotated = io.BytesIO()
    cat.rotate(90, expand=True).save(rotated, "JPEG", exif=exif)
    grey16 = Image.fromarray((np.asarray(cat.convert("L"), dtype=np.uint16) * 256).astype(np.uint16))
    return {
        "jpeg": encode(cat, "JPEG"),
        "png": encode(cat, "PNG"),
        "png-rgba": encode(rgba, "PNG"),
        "png-palette": encode(cat.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "png-grey16": encode(grey16, "PNG"),
        "webp": encode(cat, "WEBP"),
        "gif": encode(cat.convert("P"), "GIF"),
        "bmp": encode(cat, "BMP"),
        "tiff": encode(cat, "TIFF"),
        "jpeg-cmyk": encode(cat.convert("CMYK"), "JPEG"),
        "jpeg-grey": encode(cat.convert("L"), "JPEG"),
        "jpeg-exif-rotated": rotated.getvalue(),
    }


def test_every_format_and_colour_mode(trained: tuple[Any, TrainableTask]) -> None:
    _, trainable = trained
    variants = _variants()
    names = list(variants)
    answers: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), 10):
        batch = names[start : start + 10]
        result = _classify(trainable, [{"_base64": _b64(variants[n]), "name": n} for n in batch])
        answers.update({record["name"]: record for record in result["records"]})
    for name in names:
        record = answers[name]
        assert record["_status"]["code"] == 200, (name, record["_status"])
        assert record["best_label"]["name"] == "cat", (name, record["labels"])
    assert (answers["jpeg-exif-rotated"]["_width"], answers["jpeg-exif-rotated"]["_height"]) == (
        answers["jpeg"]["_width"],
        answers["jpeg"]["_height"],
    )


def test_bad_records_get_their_own_status(trained: tuple[Any, TrainableTask]) -> None:
    _, trainable = trained
    good = _b64(photo("coffee", 150))
    jpeg = photo("chelsea", 150)
    records = [
        {"_base64": good, "_id": 1},
        {"_base64": _b64(b"plain text, not a picture"), "_id": 2},
        {"_base64": _b64(jpeg[: len(jpeg) // 2]), "_id": 3},
        {"_base64": "!!!not base64", "_id": 4},
        {"_url": "http://127.0.0.1:9/refused.jpg", "_id": 5},
        {"_url": "ftp://example.com/a.jpg", "_id": 6},
        {"_id": 7},
        {"_base64": _b64(b""), "_id": 8},
    ]
    result = _classify(trainable, records)
    by_id = {record["_id"]: record for record in result["records"]}
    assert by_id[1]["_status"]["code"] == 200 and by_id[1]["best_label"]["name"] == "coffee"
    for bad in range(2, 9):
        status = by_id[bad]["_status"]
        assert 400 <= status["code"] < 500 and status["text"], (bad, status)
        assert "best_label" not in by_id[bad]
    assert "private" in by_id[5]["_status"]["text"] or "loopback" in by_id[5]["_status"]["text"]


class _ImageHandler(ImageHandler):
    body = b""


def test_url_records_from_an_allowed_local_host(
    trained: tuple[Any, TrainableTask], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, trainable = trained
    _ImageHandler.body = photo("coffee", 180)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://localhost:{server.server_address[1]}/coffee.jpg"
        refused = _classify(trainable, [{"_url": url}])["records"][0]
        assert refused["_status"]["code"] == 400  # loopback is refused unless explicitly allowed
        use_fetch_settings(monkeypatch, allowed_hosts=frozenset({"localhost"}))
        record = _classify(trainable, [{"_url": url}])["records"][0]
        assert record["_status"]["code"] == 200 and record["best_label"]["name"] == "coffee"
        assert record["_url"] == url
    finally:
        server.shutdown()


def test_request_level_errors(trained: tuple[Any, TrainableTask]) -> None:
    server, trainable = trained
    api = trainable.api
    one = {"_base64": _b64(photo("chelsea", 100))}
    cases = [
        ({"task_id": trainable.task["id"], "records": []}, 400, "1 to 10"),
        ({"task_id": trainable.task["id"], "records": [one] * 11}, 400, "1 to 10"),
        ({"records": [one]}, 400, "task_id"),
        ({"task_id": "00000000-0000-4000-8000-000000000000", "records": [one]}, 404, "not found"),
        ({"task_id": trainable.task["id"], "version": 7, "records": [one]}, 404, "version 7"),
    ]
    for body, status, words in cases:
        response = api.call("POST", "classify/", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["detail"]
    untrained = api.create_task("Untrained")
    response = api.call("POST", "classify", json={"task_id": untrained["id"], "records": [one]})
    assert response.status_code == 400 and "no trained model" in response.json()["detail"]
    other = Api(server.url, server.new_token("intruder@example.com"))
    assert other.call("POST", "classify/", json={"task_id": trainable.task["id"], "records": [one]}).status_code == 404


def test_the_head_cache_loads_each_model_once(trained: tuple[Any, TrainableTask]) -> None:
    from kestrel.usecases.classify import serving

    server, trainable = trained
    _classify(trainable, [{"_base64": _b64(photo("chelsea", 80))}])
    before = serving(server.ports).heads.loads
    for _ in range(3):
        _classify(trainable, [{"_base64": _b64(photo("chelsea", 80))}])
    assert serving(server.ports).heads.loads == before


def test_a_model_whose_backbone_is_missing_gets_409_naming_it(
    trained: tuple[Any, TrainableTask], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from kestrel.store.version_files import HEAD_FILE, model_prefix
    from kestrel.usecases import classify as classify_usecase
    from kestrel.vision.heads import ServedHead
    from tests.flow.artefacts import owner_id

    server, trainable = trained
    model = trainable.api.get("model/", params={"task": trainable.task["id"]})["results"][0]
    key = model_prefix(owner_id(server), model["id"]) + HEAD_FILE
    original = server.ports.blobs.get(key)
    missing = "efficientnet-lite0-0000000000000000"
    server.ports.blobs.put(key, replace(ServedHead.from_bytes(original), backbone_id=missing).to_bytes())
    monkeypatch.setattr(classify_usecase, "_serving", None)  # nothing loaded yet in this process
    try:
        response = trainable.api.call(
            "POST",
            "classify/",
            json={"task_id": trainable.task["id"], "records": [{"_base64": _b64(photo("chelsea", 80))}]},
        )
    finally:
        server.ports.blobs.put(key, original)
    assert response.status_code == 409, response.text
    assert f"backbone '{missing}'" in response.json()["detail"] and "train the task again" in response.json()["detail"]


def test_download_gives_the_file_classify_runs(trained: tuple[Any, TrainableTask], tmp_path: Path) -> None:
    from kestrel.vision.preprocess import preprocess
    from kestrel.vision.session import create_session

    _, trainable = trained
    model = trainable.api.get("model/", params={"task": trainable.task["id"]})["results"][0]
    export = trainable.api.get(f"model/{model['id']}/download/")
    onnx_bytes = requests.get(export["model_url"], timeout=30).content
    card = requests.get(export["card_url"], timeout=30).json()
    assert card == export["card"] and [label["name"] for label in card["labels"]] == ["cat", "coffee"]
    # The fused file and what classify serves (the shared backbone, then the head) agree to 1e-5.
    pictures = [photo(name, 222) for name in ("chelsea", "coffee", "rocket")]
    session = create_session(onnx_bytes)
    batch = np.stack([preprocess(picture) for picture in pictures])
    probabilities, descriptor = session.run(["probabilities", "descriptor"], {"image": batch})
    served = _classify(trainable, [{"_base64": _b64(picture)} for picture in pictures], descriptor=1)["records"]
    for row, record in enumerate(served):
        by_name = {label["name"]: label["prob"] for label in record["labels"]}
        for column, label in enumerate(card["labels"]):
            assert by_name[label["name"]] == pytest.approx(float(probabilities[row][column]), abs=1e-5)
        assert record["_descriptor"] == pytest.approx(descriptor[row].tolist(), abs=1e-5)
    assert json.dumps(card)  # the card is plain JSON


class _SlowImageHandler(ImageHandler):
    """/fast.jpg answers at once; any other path holds its answer until ``release`` is set."""

    body = b""
    release = threading.Event()

    def hold(self) -> None:
        if self.path != "/fast.jpg":
            self.release.wait(timeout=60)


def test_the_url_records_of_one_request_share_one_time_budget(
    trained: tuple[Any, TrainableTask], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, trainable = trained
    _SlowImageHandler.body = photo("coffee", 180)
    _SlowImageHandler.release = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowImageHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # All the URLs of a request get 2 s together (each alone may take 10 s).
    use_fetch_settings(monkeypatch, allowed_hosts=frozenset({"localhost"}), budget_seconds=2.0)
    base = f"http://localhost:{server.server_address[1]}"
    try:
        records = [{"_url": f"{base}/fast.jpg"}] + [{"_url": f"{base}/slow-{n}.jpg"} for n in range(9)]
        result = _classify(trainable, records)
    finally:
        _SlowImageHandler.release.set()
        server.shutdown()
    statuses = [record["_status"] for record in result["records"]]
    assert statuses[0]["code"] == 200 and result["records"][0]["best_label"]["name"] == "coffee"
    codes = [status["code"] for status in statuses[1:]]
    assert set(codes) == {504, 408}, statuses  # cut short while fetching / no time left to start
    for status in statuses[1:]:
        assert "2 seconds" in status["text"] and "ran out" in status["text"], status
